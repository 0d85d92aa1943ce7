package actions

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaoler/gaoler/events"
)

// Hub is where the Set takes its events from; *events.Hub implements it.
type Hub interface {
	Subscribe(name string, size int, handle func(events.Event))
	Stats() []events.Stats
}

// Defaults of a Spec.
const (
	DefaultTimeout = 30 * time.Second
	DefaultQueue   = 256
)

// Spec is one configured action and what sets it off.
type Spec struct {
	Name    string
	Type    string               // exec, mail, webhook or abuseipdb
	Events  map[events.Kind]bool // the kinds of event that run it
	Jails   map[string]int       // the jails that list it, each with its maxretry: at most that many entries reach the action
	Timeout time.Duration        // one run's limit (DefaultTimeout when 0)
	Queue   int                  // events waiting at most (DefaultQueue when 0)
	Action  Action
}

// Set runs the configured actions, each as its own subscriber of the hub. Update replaces the actions
// after a reload; Close ends them. Safe for concurrent use.
type Set struct {
	hub    Hub
	rep    *Reporter
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	workers map[string]*worker
	closed  bool
}

// worker is one action's subscription. Its spec is swapped on reload; the subscription stays, since
// a hub subscription cannot be taken back (a removed action's worker ignores what it gets).
type worker struct {
	set     *Set
	name    string
	spec    atomic.Pointer[Spec]
	dropped uint64 // drops already reported; only the worker's goroutine touches it
}

// NewSet returns a set that reads hub and reports outcomes to rep; it runs nothing until Update.
func NewSet(hub Hub, rep *Reporter) *Set {
	ctx, cancel := context.WithCancel(context.Background())
	return &Set{hub: hub, rep: rep, ctx: ctx, cancel: cancel, workers: map[string]*worker{}}
}

// subscriberName is an action's name among the hub's subscribers.
func subscriberName(action string) string { return "action." + action }

// Update makes specs the running actions: a new name subscribes, a known one has its action replaced
// (the old one is closed, so a pending digest is sent), a name no longer there stops acting.
func (s *Set) Update(specs []Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		for _, sp := range specs {
			sp.Action.Close()
		}
		return
	}
	keep := map[string]bool{}
	for i := range specs {
		sp := specs[i]
		if sp.Timeout <= 0 {
			sp.Timeout = DefaultTimeout
		}
		if sp.Queue <= 0 {
			sp.Queue = DefaultQueue
		}
		keep[sp.Name] = true
		w, ok := s.workers[sp.Name]
		if !ok {
			w = &worker{set: s, name: sp.Name}
			w.spec.Store(&sp)
			s.workers[sp.Name] = w
			s.hub.Subscribe(subscriberName(sp.Name), sp.Queue, w.handle)
			continue
		}
		if old := w.spec.Swap(&sp); old != nil {
			go old.Action.Close()
		}
	}
	for name, w := range s.workers {
		if !keep[name] {
			if old := w.spec.Swap(nil); old != nil {
				go old.Action.Close()
			}
		}
	}
}

// Close cancels the runs in progress and closes every action; a digest still waiting is sent. Close
// the hub first, so that the events already queued are handled.
func (s *Set) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	var specs []*Spec
	for _, w := range s.workers {
		if sp := w.spec.Swap(nil); sp != nil {
			specs = append(specs, sp)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sp := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sp.Action.Close()
		}()
	}
	wg.Wait()
	s.cancel()
}

// handle runs the action for one event, on the worker's own goroutine.
func (w *worker) handle(ev events.Event) {
	sp := w.spec.Load()
	if sp == nil {
		return
	}
	w.reportDrops(sp)
	if ev.Origin.Kind == events.OriginRestored || !sp.Events[ev.Kind] {
		return
	}
	maxEntries, ok := sp.Jails[ev.Jail]
	if !ok {
		return
	}
	if maxEntries > 0 && len(ev.Entries) > maxEntries {
		ev.Entries = ev.Entries[len(ev.Entries)-maxEntries:]
	}
	ctx, cancel := context.WithTimeout(w.set.ctx, sp.Timeout)
	defer cancel()
	start := time.Now()
	res, err := sp.Action.Run(ctx, ev)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		w.set.rep.TimedOut(sp.Name, sp.Type, ev, sp.Timeout, err)
	case err != nil:
		w.set.rep.Failed(sp.Name, sp.Type, &ev, err)
	case res.Skipped != "":
		w.set.rep.Skipped(sp.Name, sp.Type, &ev, res.Skipped)
	case !res.Held:
		w.set.rep.Sent(sp.Name, sp.Type, &ev, res.Note, time.Since(start))
	}
}

// reportDrops logs the events the hub dropped from this action's full queue since the last report.
func (w *worker) reportDrops(sp *Spec) {
	name := subscriberName(w.name)
	for _, st := range w.set.hub.Stats() {
		if st.Name != name {
			continue
		}
		if st.Dropped > w.dropped {
			w.set.rep.Dropped(sp.Name, sp.Type, st.Dropped-w.dropped, sp.Queue)
			w.dropped = st.Dropped
		}
		return
	}
}
