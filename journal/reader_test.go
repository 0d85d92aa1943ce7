package journal

import (
	"context"
	"testing"
	"time"
)

// fakeSource is a journal in memory driven by a script: each cold wait runs the next step of the
// script (which may append entries), each timed wait advances the fake clock by the timeout.
type fakeSource struct {
	t        *testing.T
	now      time.Time
	entries  []*Entry
	next     int
	steps    []func(*fakeSource) int // run by cold waits; return the change to report
	cancel   context.CancelFunc
	waits    []time.Duration // timeouts asked for
	reseeks  int
	stuck    bool // the last appended entry is not returned until a reposition
	maxWaits int
}

func (f *fakeSource) clock() time.Time { return f.now }

func (f *fakeSource) read(batch []Entry) (int, error) {
	n := 0
	limit := len(f.entries)
	if f.stuck {
		limit--
	}
	for f.next < limit && n < len(batch) {
		batch[n] = *f.entries[f.next]
		f.next++
		n++
	}
	return n, nil
}

func (f *fakeSource) wait(timeout time.Duration) (int, error) {
	f.waits = append(f.waits, timeout)
	if len(f.waits) > f.maxWaits {
		f.t.Fatalf("more than %d waits", f.maxWaits)
	}
	if timeout >= 0 {
		f.now = f.now.Add(timeout)
		return changeNone, nil
	}
	if len(f.steps) == 0 {
		f.cancel()
		return changeNone, nil
	}
	s := f.steps[0]
	f.steps = f.steps[1:]
	return s(f), nil
}

func (f *fakeSource) hotWait(time.Duration) (int, error) { return f.wait(hotPoll) }
func (f *fakeSource) headers() bool                      { return false }

func (f *fakeSource) reposition() error { f.reseeks++; f.stuck = false; return nil }
func (f *fakeSource) wake()             {}
func (f *fakeSource) close() error      { return nil }

// add appends an entry written at the fake clock's now minus age; failure marks it as a failure.
func (f *fakeSource) add(msg string, age time.Duration) {
	f.entries = append(f.entries, NewEntry(msg, uint64(f.now.Add(-age).UnixMicro()), msg, nil))
}

func run(t *testing.T, f *fakeSource, hold time.Duration, onBatch func(r *Reader, b []Entry)) *Reader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.t = t
	if f.maxWaits == 0 {
		f.maxWaits = 100000
	}
	r := newReader(f, []string{"MESSAGE"}, hold, func(string) {}, f.clock)
	err := r.Run(ctx, func(b []Entry) uint64 {
		if onBatch != nil {
			onBatch(r, b)
		}
		var last uint64
		for _, e := range b {
			if e.Message == "fail" {
				last = e.Realtime
			}
		}
		return last
	})
	if err != context.Canceled {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	return r
}

func count(waits []time.Duration, d time.Duration) int {
	n := 0
	for _, w := range waits {
		if w == d {
			n++
		}
	}
	return n
}

func TestColdOnOrdinaryEntries(t *testing.T) {
	f := &fakeSource{now: time.Unix(1e9, 0)}
	for i := 0; i < 3; i++ {
		f.steps = append(f.steps, func(f *fakeSource) int { f.add("accepted", 0); return changeAppend })
	}
	run(t, f, time.Second, nil)
	for _, w := range f.waits {
		if w >= 0 {
			t.Fatalf("waited with a timeout (%v) although no failure was seen: %v", w, f.waits)
		}
	}
}

func TestHotAfterLiveFailureThenCold(t *testing.T) {
	f := &fakeSource{now: time.Unix(1e9, 0)}
	hold := 100 * time.Millisecond
	f.steps = []func(*fakeSource) int{
		func(f *fakeSource) int { f.add("fail", 0); return changeAppend },
		// after going cold again: a non-failure does not make it hot
		func(f *fakeSource) int { f.add("accepted", 0); return changeAppend },
	}
	start := f.now
	r := run(t, f, hold, func(r *Reader, b []Entry) {
		if b[0].Message == "fail" {
			return
		}
		if hot, _ := r.Mode(); hot {
			t.Error("hot after the hold time")
		}
	})
	polls := count(f.waits, hotPoll)
	if polls < 95 || polls > 101 {
		t.Errorf("%d hot polls, want about %d (hold %v / %v)", polls, hold/hotPoll, hold, hotPoll)
	}
	if got := f.now.Sub(start); got < hold || got > hold+2*hotPoll {
		t.Errorf("hot for %v, want %v", got, hold)
	}
	if f.waits[len(f.waits)-1] >= 0 || f.waits[len(f.waits)-2] >= 0 {
		t.Errorf("not back to blocking waits: %v", f.waits[len(f.waits)-3:])
	}
	if hot, _ := r.Mode(); hot {
		t.Error("Mode() hot at the end")
	}
	// While hot and idle, the reader re-positions against a stuck tail about every hotReseek.
	if want := int(hold / hotReseek); f.reseeks < want-1 {
		t.Errorf("%d re-positions while hot, want >= %d", f.reseeks, want-1)
	}
}

func TestBacklogFailureStaysCold(t *testing.T) {
	f := &fakeSource{now: time.Unix(1e9, 0)}
	f.steps = []func(*fakeSource) int{
		func(f *fakeSource) int {
			for i := 0; i < 3000; i++ { // three batches of old failures
				f.add("fail", time.Hour)
			}
			return changeAppend
		},
	}
	run(t, f, 30*time.Second, nil)
	if n := count(f.waits, hotPoll); n != 0 {
		t.Errorf("%d hot polls after a backlog of failures, want 0", n)
	}
}

func TestModeReportsTimeLeft(t *testing.T) {
	f := &fakeSource{now: time.Unix(1e9, 0)}
	f.steps = []func(*fakeSource) int{func(f *fakeSource) int { f.add("fail", 10*time.Second); return changeAppend }}
	var left time.Duration
	var hot bool
	run(t, f, 30*time.Second, func(r *Reader, b []Entry) {
		r.failure(b[0].Realtime)
		hot, left = r.Mode()
	})
	if !hot || left != 20*time.Second {
		t.Errorf("Mode() = %v, %v; want true, 20s", hot, left)
	}
}

func TestStuckTailRepositionAfterNotification(t *testing.T) {
	f := &fakeSource{now: time.Unix(1e9, 0)}
	var got []string
	f.steps = []func(*fakeSource) int{
		func(f *fakeSource) int { f.add("accepted", 0); f.stuck = true; return changeAppend },
	}
	run(t, f, time.Second, func(r *Reader, b []Entry) {
		for _, e := range b {
			got = append(got, e.Message)
		}
	})
	if len(got) != 1 {
		t.Fatalf("stuck entry not delivered after journald's notification: %q", got)
	}
}

func TestNeverHotWithNegativeHold(t *testing.T) {
	f := &fakeSource{now: time.Unix(1e9, 0)}
	f.steps = []func(*fakeSource) int{func(f *fakeSource) int { f.add("fail", 0); return changeAppend }}
	run(t, f, -1, nil)
	if n := count(f.waits, hotPoll); n != 0 {
		t.Errorf("%d hot polls with Hold < 0", n)
	}
}

// busySource is a source whose read advances the fake clock, as a journal call that hangs would.
type busySource struct {
	fakeSource
	readTakes            time.Duration
	busyInWait, busyInFn time.Duration
	r                    *Reader
}

func (b *busySource) read(batch []Entry) (int, error) {
	b.now = b.now.Add(b.readTakes)
	if b.r != nil && b.r.Busy() < b.readTakes {
		b.t.Errorf("Busy() = %v inside a read that took %v", b.r.Busy(), b.readTakes)
	}
	return b.fakeSource.read(batch)
}

func (b *busySource) wait(timeout time.Duration) (int, error) {
	b.busyInWait = b.r.Busy()
	return b.fakeSource.wait(timeout)
}

// TestBusy: the watchdog's view of the reader. Inside the journal Busy grows with the time spent
// there; while waiting for entries or handing a batch over it is 0.
func TestBusy(t *testing.T) {
	b := &busySource{readTakes: 3 * time.Second}
	b.now = time.Unix(1_800_000_000, 0)
	b.t = t
	b.add("one", 0)
	b.maxWaits = 10
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	r := newReader(b, []string{"MESSAGE"}, time.Second, func(string) {}, b.clock)
	b.r = r
	r.Run(ctx, func(batch []Entry) uint64 {
		b.busyInFn = r.Busy()
		return 0
	})
	if b.busyInWait != 0 || b.busyInFn != 0 {
		t.Errorf("Busy() = %v while waiting, %v in fn; want 0", b.busyInWait, b.busyInFn)
	}
}
