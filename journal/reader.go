package journal

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// BatchSize is the most entries Run passes to its callback at once.
const BatchSize = 1024

// DefaultHold is how long the Reader stays hot after a live failure when Options.Hold is zero.
const DefaultHold = 30 * time.Second

// hotPoll is how often a hot Reader looks for new entries.
const hotPoll = time.Millisecond

// hotReseek is how often a hot Reader with nothing new re-positions itself, against the stuck tail,
// when its source cannot watch the files' headers; with a header watch it is the longest one hot wait
// lasts.
var hotReseek = 25 * time.Millisecond

// stuckRetry is how long after a change that delivered nothing a hot Reader watching headers
// re-positions itself once more: the stuck tail's window (between journald counting an entry and
// linking it where matches look) is microseconds wide.
const stuckRetry = 2 * time.Millisecond

// changeCount is what a source watching headers reports when a journal file's entry count moved:
// something was appended, most often an entry no match selects (on a busy host, every other
// service's), so the Reader reads, and re-positions against the stuck tail only at most every
// hotReseek, not at every count that brought nothing.
const changeCount = 100

// Position is where a Reader resumes: after the entry with Cursor. When the journal no longer has that
// entry (vacuumed), the Reader calls Options.Warn and resumes at the first entry at or after
// RealtimeUsec. The zero Position means "no checkpoint": the Reader starts at Options.SinceUsec.
type Position struct {
	Cursor       string
	RealtimeUsec uint64
}

// PositionOf returns the Position after e, which must carry a Cursor: the last entry of a batch (see
// Entry.Cursor). For another entry of a batch it returns only e's timestamp, and a Reader started there
// delivers e and the entries before it with the same timestamp again.
func PositionOf(e *Entry) Position { return Position{Cursor: e.Cursor, RealtimeUsec: e.Realtime} }

// Options configure a Reader.
type Options struct {
	Directory string   // journal files in this directory; "" = the local system's journal
	Matches   []Match  // OR'ed together (the union of the jails'); none, or a zero Match, = every entry
	Fields    []string // extra fields to read; MESSAGE, _COMM, _PID and the matches' fields always are
	Start     Position
	SinceUsec uint64        // where to start when Start is zero; 0 = the oldest entry
	Hold      time.Duration // how long to stay hot after a live failure; 0 = DefaultHold, < 0 = never hot
	Warn      func(msg string)
}

// Reader follows the journal and delivers its entries in batches; see Run.
type Reader struct {
	src    source
	fields []string
	batch  []Entry
	hold   time.Duration
	now    func() time.Time
	warn   func(string)

	matches  []Match      // what an entry must satisfy to be delivered (sd-journal only pre-selects)
	hotUntil atomic.Int64 // UnixNano until which the reader is hot; read by Mode from any goroutine
	near     atomic.Int32 // nearUnknown, nearNone, nearSome or nearAlways (SetNearBan)
	busy     atomic.Int64 // UnixNano since which Run has been inside the journal; 0 while waiting or in fn
}

// source is the journal as Run sees it; the sd-journal implementation is sdSource, tests use a fake.
type source interface {
	// read advances by up to len(batch) entries, fills batch, and returns how many it filled.
	read(batch []Entry) (int, error)
	// wait blocks until the journal may have changed, wake is called, or timeout passes (timeout < 0:
	// no timeout), and returns what sd_journal_process reported (changeNone when nothing).
	wait(timeout time.Duration) (int, error)
	// reposition seeks to just after the last entry read (or to the start position).
	reposition() error
	// hotWait waits, while the Reader is hot, at most max: for a change it can see at once (a
	// source watching the journal files' headers), else for hotPoll.
	hotWait(max time.Duration) (int, error)
	// headers reports whether hotWait sees appended entries at once, so that no periodic
	// re-positioning is needed against the stuck tail.
	headers() bool
	// wake makes a blocked wait return; safe from any goroutine.
	wake()
	close() error
}

// Open opens the journal, adds the matches and seeks to the start position.
func Open(o Options) (*Reader, error) {
	fields := []string{"MESSAGE", "_COMM", "_PID"}
	for _, m := range o.Matches {
		for _, f := range m.Fields() {
			if !contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	for _, f := range o.Fields {
		if !validField(f) {
			return nil, fmt.Errorf("journal: %q is not a journal field name", f)
		}
		if !contains(fields, f) {
			fields = append(fields, f)
		}
	}
	warn := o.Warn
	if warn == nil {
		warn = func(string) {}
	}
	src, err := openSD(o, fields, warn)
	if err != nil {
		return nil, err
	}
	r := newReader(src, fields, o.Hold, warn, time.Now)
	for _, m := range o.Matches {
		if m.IsZero() {
			return r, nil // every entry
		}
	}
	r.matches = o.Matches
	return r, nil
}

func newReader(src source, fields []string, hold time.Duration, warn func(string), now func() time.Time) *Reader {
	if hold == 0 {
		hold = DefaultHold
	}
	return &Reader{src: src, fields: fields, batch: make([]Entry, BatchSize), hold: hold, now: now, warn: warn}
}

// Fields returns the fields the Reader reads for each entry.
func (r *Reader) Fields() []string { return append([]string(nil), r.fields...) }

// Run follows the journal until ctx is cancelled, passing batches of at most BatchSize entries to fn on
// the calling goroutine. The batch and its Entry values are reused by the next batch (the strings in
// them may be kept); only the last entry of a batch carries its Cursor, resume after the batch with
// PositionOf(&batch[len(batch)-1]). fn returns the Realtime of the newest entry in the batch that was a failure, or 0;
// a failure newer than Hold makes the Reader hot (see the package documentation). Run returns ctx.Err()
// when cancelled; it does not return on journal rotation, vacuuming or a journald restart.
func (r *Reader) Run(ctx context.Context, fn func(batch []Entry) (lastFailureUsec uint64)) error {
	stop := context.AfterFunc(ctx, r.src.wake)
	defer stop()

	recheck := false      // journald said something changed: re-position once we find nothing new
	var retryAt time.Time // a change delivered nothing: re-position once more then (stuckRetry)
	lastSeek := r.now()
	failing := false // the last read failed: wait for a change before trying again
	unmoved := false // a hot wait watching the headers saw nothing move: nothing to read
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if unmoved {
			unmoved = false
			goto wait
		}
		// Start a fresh scheduler time slice before going into C. The reader and the goroutine that
		// handles its batches hand the processor to each other and would share one slice; when it
		// runs out (10 ms) while we are inside sd-journal, Go's sysmon takes the processor away,
		// hands it to another thread and keeps polling every 20 us: on a backlog that cost a
		// quarter of the daemon's CPU in thread switches.
		runtime.Gosched()
		r.busy.Store(r.now().UnixNano())
		if !failing {
			n, err := r.src.read(r.batch)
			if err != nil {
				r.warn(fmt.Sprintf("reading the journal: %v; retrying after the next change", err))
				failing = true
				continue
			}
			if n > 0 {
				r.busy.Store(0)
				retryAt = time.Time{}
				if n = r.keep(r.batch[:n]); n == 0 {
					continue
				}
				r.failure(fn(r.batch[:n]))
				continue
			}
			if recheck {
				recheck = false
				lastSeek = r.now()
				if retryAt.IsZero() {
					retryAt = lastSeek.Add(stuckRetry)
				}
				if err := r.src.reposition(); err != nil {
					r.warn(fmt.Sprintf("re-positioning in the journal: %v", err))
				}
				continue
			}
		}

	wait:
		hot, _ := r.Mode()
		if !hot {
			retryAt = time.Time{}
		}
		r.busy.Store(0)
		var change int
		var err error
		if hot {
			longest := hotReseek
			if !retryAt.IsZero() {
				longest = min(longest, max(retryAt.Sub(r.now()), hotPoll))
			}
			change, err = r.src.hotWait(longest)
		} else {
			change, err = r.src.wait(-1)
		}
		r.busy.Store(r.now().UnixNano())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("journal: waiting for entries: %w", err)
		}
		switch {
		case change == changeInvalidate || failing:
			// Files were added or removed (rotation, vacuum, journald restarted): find our place again
			// from the last cursor rather than trusting the old per-file positions.
			failing = false
			lastSeek = r.now()
			if err := r.src.reposition(); err != nil {
				r.warn(fmt.Sprintf("re-positioning in the journal: %v", err))
			}
		case change == changeAppend:
			recheck = true
		case change == changeCount:
			if retryAt.IsZero() {
				retryAt = r.now().Add(stuckRetry)
				if next := lastSeek.Add(hotReseek); next.After(retryAt) {
					retryAt = next
				}
			}
		case hot && !retryAt.IsZero() && !r.now().Before(retryAt):
			retryAt = time.Time{}
			lastSeek = r.now()
			if err := r.src.reposition(); err != nil {
				r.warn(fmt.Sprintf("re-positioning in the journal: %v", err))
			}
		case hot && r.src.headers():
			unmoved = change == changeNone
		case hot && r.now().Sub(lastSeek) >= hotReseek:
			lastSeek = r.now()
			if err := r.src.reposition(); err != nil {
				r.warn(fmt.Sprintf("re-positioning in the journal: %v", err))
			}
		}
	}
}

// keep moves the entries of batch that satisfy one of the Reader's matches to its front and returns
// how many there are. sd-journal is given a wider pre-selection (see Match.SDTerms); the last entry
// kept takes the batch's cursor, so that resuming after it also skips the entries left out.
func (r *Reader) keep(batch []Entry) int {
	if len(r.matches) == 0 {
		return len(batch)
	}
	last := batch[len(batch)-1].Cursor
	n := 0
	for i := range batch {
		for _, m := range r.matches {
			if m.Satisfied(&batch[i]) {
				if n != i {
					batch[n], batch[i] = batch[i], batch[n]
				}
				n++
				break
			}
		}
	}
	if n > 0 {
		batch[n-1].Cursor = last
	}
	return n
}

// failure records a failure reported by the callback: if its timestamp is within Hold of now, the
// Reader is hot until Hold after it.
func (r *Reader) failure(usec uint64) {
	if usec == 0 || r.hold < 0 {
		return
	}
	until := time.UnixMicro(int64(usec)).Add(r.hold)
	if !until.After(r.now()) {
		return // a backlog: judged, but no reason to hurry
	}
	if u := until.UnixNano(); u > r.hotUntil.Load() {
		r.hotUntil.Store(u)
	}
}

// What the Reader knows of the jails' windows (SetNearBan).
const (
	nearUnknown = iota // never told: hot after every live failure
	nearNone
	nearSome
	nearAlways
)

// SetNearBan tells the Reader whether reading the next failure within milliseconds can make a ban:
// near when some address is one failure from its ban (the Reader is then hot for Hold after each
// live failure), always when every failure bans (maxretry 1: hot all the time). Neither: the Reader
// is cold, whatever failures it reads. Until it is first called, every live failure makes the
// Reader hot. Safe from any goroutine; the caller tells it after each batch and whenever bans or
// windows change otherwise.
func (r *Reader) SetNearBan(near, always bool) {
	switch {
	case always:
		r.near.Store(nearAlways)
	case near:
		r.near.Store(nearSome)
	default:
		r.near.Store(nearNone)
	}
}

// Mode reports whether the Reader is hot (polling about every millisecond after a live failure) and
// for how much longer; left is 0 when it is hot for as long as every failure bans (SetNearBan). It is
// safe to call from any goroutine.
func (r *Reader) Mode() (hot bool, left time.Duration) {
	switch r.near.Load() {
	case nearAlways:
		return r.hold >= 0, 0
	case nearNone:
		return false, 0
	}
	left = time.Duration(r.hotUntil.Load() - r.now().UnixNano())
	if left <= 0 {
		return false, 0
	}
	return true, left
}

// Busy reports how long Run has been inside the journal (reading, re-positioning) without coming back
// to wait or to hand over a batch; 0 when it is not. A reader busy for long is hung: the daemon stops
// its watchdog pings then, so that systemd restarts it. Safe from any goroutine.
func (r *Reader) Busy() time.Duration {
	since := r.busy.Load()
	if since == 0 {
		return 0
	}
	return time.Duration(r.now().UnixNano() - since)
}

// Close releases the journal. It must not be called while Run is running.
func (r *Reader) Close() error { return r.src.close() }

// errClosed is returned by a source used after close.
var errClosed = errors.New("journal: reader closed")
