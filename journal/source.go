package journal

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sdSource is the Reader's source on a real journal: an sdJournal, its inotify descriptor, an eventfd
// that wakes a blocked wait, and the position bookkeeping that makes resuming exact.
type sdSource struct {
	j      *sdJournal
	hdr    *headerWatch // nil: hot waits ask sd-journal every hotPoll
	fd     int
	events int16
	wakeMu sync.Mutex // guards wakeFd between wake (any goroutine) and close
	wakeFd int

	start Position // where reading started, for a reposition before any entry was read
	since uint64
	last  string // cursor of the last entry read
	skip  string // cursor to leave out if it is the first entry after a seek

	matches []Match    // the pre-selection given to sd-journal (none: every entry)
	probe   *sdJournal // while a pruned pre-selection reads the backlog: the terms it left out
}

func openSD(o Options, fields []string, warn func(string)) (*sdSource, error) {
	j, err := openJournal(o.Directory)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	s := &sdSource{j: j, fd: -1, wakeFd: -1, start: o.Start, since: o.SinceUsec}
	fail := func(err error) (*sdSource, error) {
		s.close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := j.setFields(fields, BatchSize); err != nil {
		return fail(err)
	}
	// The inotify watches must exist before the first read, or a change in between would be missed.
	if s.fd, s.events, err = j.fd(); err != nil {
		return fail(err)
	}
	if s.wakeFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(fmt.Errorf("eventfd: %w", err))
	}
	if o.Start.Cursor != "" {
		// Test for the entry before adding matches: with the matches of a changed configuration
		// the saved entry may not match, which does not mean it is gone.
		ok, err := j.hasCursor(o.Start.Cursor)
		if err != nil {
			return fail(err)
		}
		if !ok {
			warn(fmt.Sprintf("the journal no longer has the saved position %q (vacuumed?); "+
				"resuming at its time, %s", o.Start.Cursor,
				time.UnixMicro(int64(o.Start.RealtimeUsec)).UTC().Format(time.RFC3339Nano)))
			s.start = Position{RealtimeUsec: o.Start.RealtimeUsec}
			if s.start.RealtimeUsec == 0 {
				s.start.RealtimeUsec = 1 // not the zero Position: do not fall back to SinceUsec
			}
		}
	}
	all := len(o.Matches) == 0
	for _, m := range o.Matches {
		_, ok := m.SDTerms()
		all = all || m.IsZero() || !ok
	}
	if !all {
		s.matches = o.Matches
		keep, err := s.prune(o.Directory)
		if err != nil {
			return fail(err)
		}
		if err := s.addMatches(keep); err != nil {
			return fail(err)
		}
	}
	if err := s.reposition(); err != nil {
		return fail(err)
	}
	s.hdr = newHeaderWatch(o.Directory, time.Now)
	return s, nil
}

// prune finds the pre-selection's terms whose value no journal file holds (with the sshd filter's
// default match on a host with one OpenSSH version: sshd.service, sshd-session, sshd-auth) and
// returns the filter that leaves them out of what sd-journal is given, or nil to give it every term.
// sd-journal looks each term up in each file at every step, and an alternative that is left with
// no term is not walked at all: reading a backlog costs less. Entries that arrive later may hold
// such a value, so a second handle, the probe, watches for them (read) until the backlog is read.
func (s *sdSource) prune(dir string) (keep func(string) bool, err error) {
	absent := map[string]bool{}
	present := 0
	for _, m := range s.matches {
		terms, _ := m.SDTerms()
		for _, t := range terms {
			if _, seen := absent[t]; seen || t == "+" {
				continue
			}
			held, err := s.j.holds(t)
			if err != nil {
				return nil, err
			}
			absent[t] = !held
			if held {
				present++
			}
		}
	}
	if present == 0 || present == len(absent) {
		return nil, nil // nothing to leave out, or nothing to read yet: the whole pre-selection
	}
	probe, err := openJournal(dir)
	if err != nil {
		return nil, err
	}
	for t, gone := range absent {
		if !gone {
			continue
		}
		if err := probe.addMatch(t); err == nil {
			err = probe.addDisjunction()
		}
		if err != nil {
			probe.close()
			return nil, err
		}
	}
	s.probe = probe
	return func(t string) bool { return !absent[t] }, nil
}

// addMatches gives sd-journal the matches' pre-selection, less the terms keep refuses.
func (s *sdSource) addMatches(keep func(string) bool) error {
	added := 0
	for _, m := range s.matches {
		n, err := m.addTo(s.j, keep)
		if err != nil {
			return err
		}
		added += n
	}
	if added == 0 {
		return fmt.Errorf("journal: no term of the matches to select by") // prune keeps one at least
	}
	return nil
}

// unprune ends a pruned pre-selection: sd-journal is given every term, and reading goes on after the
// last entry delivered. Should sd-journal refuse a term, it is given none (every entry is read and
// the matches decide in Go) rather than a part of them.
func (s *sdSource) unprune() error {
	s.probe.close()
	s.probe = nil
	s.j.flushMatches()
	err := s.addMatches(nil)
	if err != nil {
		s.j.flushMatches()
	}
	if perr := s.reposition(); err == nil {
		err = perr
	}
	return err
}

func (s *sdSource) read(batch []Entry) (int, error) {
	if s.j == nil {
		return 0, errClosed
	}
	n, skipped, err := s.j.read(batch, s.skip)
	if s.probe != nil && err == nil {
		// The batch counts only if no entry holding a left-out value was written before its last
		// entry: the probe, asked after the read, would see it. At the end of the backlog the whole
		// pre-selection takes over for good (the probe does not follow new files).
		if appeared, perr := s.probe.any(); n == 0 || appeared || perr != nil {
			if err := s.unprune(); err != nil {
				return 0, err
			}
			return s.read(batch)
		}
	}
	if skipped >= 0 {
		s.skip = ""
	}
	if n > 0 {
		s.last = batch[n-1].Cursor
	}
	return n, err
}

// reposition seeks so that the next read returns the entry after the last one read: seek to its
// cursor (which lands on the entry itself, or on the next one if it is gone) and leave it out.
func (s *sdSource) reposition() error {
	switch {
	case s.last != "":
		s.skip = s.last
		return s.j.seekCursor(s.last)
	case s.start.Cursor != "":
		s.skip = s.start.Cursor
		return s.j.seekCursor(s.start.Cursor)
	case s.start.RealtimeUsec != 0:
		return s.j.seekRealtime(s.start.RealtimeUsec)
	case s.since != 0:
		return s.j.seekRealtime(s.since)
	default:
		return s.j.seekHead()
	}
}

func (s *sdSource) wait(timeout time.Duration) (int, error) {
	if s.j == nil {
		return 0, errClosed
	}
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	if dl := s.j.timeoutUsec(); dl != ^uint64(0) {
		// A journal on a network file system: inotify is not reliable, libsystemd asks to be
		// called again by this CLOCK_MONOTONIC deadline.
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		left := int64(dl) - ts.Nano()/1000
		lms := int(max(left, 0) / 1000)
		if ms < 0 || lms < ms {
			ms = lms
		}
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: s.events}, {Fd: int32(s.wakeFd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return changeNone, fmt.Errorf("poll: %w", err)
		}
		break
	}
	if fds[1].Revents != 0 {
		var b [8]byte
		_, _ = unix.Read(s.wakeFd, b[:])
	}
	// sd_journal_process also when poll timed out: on a network file system it is what checks.
	c, err := s.j.process()
	if c == changeInvalidate && s.hdr != nil {
		s.hdr.rescan()
	}
	return c, err
}

// hotWait waits, while the Reader is hot, for up to max: it returns changeCount as soon as a
// journal file's entry count moves (checked every hotPoll in the files' mapped headers), what
// sd_journal_process reports when journald's notification arrives, or changeNone after max or a
// wake. Without active files to watch it is one wait of hotPoll.
func (s *sdSource) hotWait(max time.Duration) (int, error) {
	if s.j == nil {
		return 0, errClosed
	}
	if !s.headers() {
		return s.wait(hotPoll)
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: s.events}, {Fd: int32(s.wakeFd), Events: unix.POLLIN}}
	// In calls of at most hotChunk: a cgo call that lasts 10 ms or more makes Go's sysmon take the
	// processor from it and then poll every 20 us for a while, which cost more than the polls.
	what := hotTimeout
	for waited := time.Duration(0); waited < max && what == hotTimeout; waited += hotChunk {
		var err error
		if what, err = hotWaitC(fds, s.hdr, min(hotChunk, max-waited)); err != nil {
			return changeNone, err
		}
	}
	switch what {
	case hotReady:
		if fds[1].Revents != 0 {
			var b [8]byte
			_, _ = unix.Read(s.wakeFd, b[:])
			return changeNone, nil
		}
		c, err := s.j.process()
		if c == changeInvalidate {
			s.hdr.rescan() // files were added or removed: watch the active ones
		}
		return c, err
	case hotGone:
		s.hdr.rescan()
		return changeAppend, nil
	case hotCount:
		return changeCount, nil
	}
	return changeNone, nil
}

func (s *sdSource) headers() bool { return s.hdr != nil && s.hdr.watching() }

func (s *sdSource) wake() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.wakeFd >= 0 {
		b := [8]byte{1} // an eventfd counter of 1 (any non-zero value wakes)
		_, _ = unix.Write(s.wakeFd, b[:])
	}
}

func (s *sdSource) close() error {
	if s.probe != nil {
		s.probe.close()
		s.probe = nil
	}
	if s.j != nil {
		s.j.close()
		s.j = nil
	}
	if s.hdr != nil {
		s.hdr.close()
		s.hdr = nil
	}
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.wakeFd >= 0 {
		unix.Close(s.wakeFd)
		s.wakeFd = -1
	}
	return nil
}
