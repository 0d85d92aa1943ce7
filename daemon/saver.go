package daemon

import (
	"sync"
	"time"
)

// saver writes checkpoints on a goroutine of its own. The daemon takes each checkpoint under its
// mutex (the cursor and the state it produced, together) and hands it over, so the file's fsyncs (2 ms
// on this project's CI disk, tens of milliseconds on a spinning one, once a second under attack) never
// hold up the journal reader. A newer checkpoint replaces one still waiting to be written. Whoever
// promises durability (a manual ban or unban, a reload, stop) waits for theirs. Failed writes are
// logged as writeErrors decides: once per kind, then summed up.
type saver struct {
	dir     string
	logErr  func(error)
	logInfo func(string)
	now     func() time.Time
	errs    writeErrors // used by run only

	mu      sync.Mutex
	cond    sync.Cond
	next    *Checkpoint   // handed over, not being written yet
	queued  uint64        // number of the newest checkpoint handed over
	written uint64        // number of the newest checkpoint written, or failed
	lastErr error         // that write's error
	failed  bool          // a write failed since takeFailed last looked
	fails   uint64        // writes that failed since the start
	savedAt time.Time     // when the checkpoint on disk was taken (the newest written, or the one loaded at start)
	took    time.Duration // how long the latest write took
	closed  bool
	done    chan struct{}
}

func newSaver(dir string, logErr func(error), logInfo func(string)) *saver {
	s := &saver{dir: dir, logErr: logErr, logInfo: logInfo, now: time.Now, done: make(chan struct{})}
	s.cond.L = &s.mu
	go s.run()
	return s
}

func (s *saver) run() {
	defer close(s.done)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for s.next == nil && !s.closed {
			s.cond.Wait()
		}
		if s.next == nil {
			return // closed, and everything written
		}
		cp, n := s.next, s.queued
		s.next = nil
		s.mu.Unlock()
		began := time.Now()
		err := cp.Save(s.dir)
		took := time.Since(began)
		if err != nil {
			if e := s.errs.fail(err, s.now()); e != nil {
				s.logErr(e)
			}
		} else if msg := s.errs.ok(s.now()); msg != "" {
			s.logInfo(msg)
		}
		s.mu.Lock()
		s.written, s.lastErr, s.took = n, err, took
		s.failed = s.failed || err != nil
		if err != nil {
			s.fails++
		} else {
			s.savedAt = cp.SavedAt
		}
		s.cond.Broadcast()
	}
}

// failures returns how many checkpoint writes failed since the start.
func (s *saver) failures() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fails
}

// busy reports whether a checkpoint is being written or waits to be. The daemon's periodic
// checkpoints skip their turn then (the state stays dirty, the next tick tries again): a snapshot of
// 200,000 bans is tens of megabytes, and three alive at once (one written, one waiting, one being
// taken) made most of a flood's peak memory.
func (s *saver) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next != nil || s.written < s.queued
}

// cost returns how long the latest write took (merging, encoding, writing and fsyncing the state).
func (s *saver) cost() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.took
}

// saved returns when the checkpoint on disk was taken: the newest written, or the one loaded at start
// (see loaded); zero when there is none. While writes fail it stays behind, so its age tells.
func (s *saver) saved() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.savedAt
}

// loaded tells the saver the time of the checkpoint the daemon started from.
func (s *saver) loaded(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.savedAt.IsZero() {
		s.savedAt = at
	}
}

// put hands cp over to be written and returns its number, for wait.
func (s *saver) put(cp *Checkpoint) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued++
	s.next = cp
	s.cond.Broadcast()
	return s.queued
}

// wait blocks until checkpoint n, or a newer one that replaced it, is written, and returns the error
// of that write.
func (s *saver) wait(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.written < n {
		s.cond.Wait()
	}
	return s.lastErr
}

// takeFailed reports whether a write failed since it was last asked (the daemon then saves again).
func (s *saver) takeFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failed
	s.failed = false
	return f
}

// close writes what is still waiting and stops the goroutine.
func (s *saver) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
}
