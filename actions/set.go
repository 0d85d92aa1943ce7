package actions

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
)

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
	// Config is the table the action was built from: Configure keeps the running Action (its whois
	// cache, its report limits, its digest) when a reload leaves the table as it was.
	Config *config.Action
}

// Set runs the configured actions. The daemon hands it every event with Handle (from its own Hub
// subscription); the Set passes each on to its own events.Hub, where every action is a subscriber with
// its own bounded queue and goroutine. Update replaces the actions after a reload; Close ends them.
// Safe for concurrent use.
type Set struct {
	hub    *events.Hub
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
	stopped uint64 // events let go because the set was closing; only the worker's goroutine touches it
}

// NewSet returns a set that reports outcomes to rep; it runs nothing until Update.
func NewSet(rep *Reporter) *Set {
	ctx, cancel := context.WithCancel(context.Background())
	return &Set{hub: events.NewHub(), rep: rep, ctx: ctx, cancel: cancel, workers: map[string]*worker{}}
}

// Handle queues ev for every action; it never waits for one.
func (s *Set) Handle(ev events.Event) { s.hub.Publish(ev) }

// closeGrace is how long Close lets the queued runs go on before it cancels them.
const closeGrace = 5 * time.Second

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
		if old := w.spec.Swap(&sp); old != nil && old.Action != sp.Action {
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

// Configure makes the actions of cfg the running ones, as Update does, but keeps the running Action
// of every table that has not changed.
func (s *Set) Configure(cfg *config.Config, env Env) {
	specs := Specs(cfg, env)
	s.mu.Lock()
	for i, sp := range specs {
		w := s.workers[sp.Name]
		if w == nil {
			continue
		}
		if old := w.spec.Load(); old != nil && old.Config != nil && reflect.DeepEqual(old.Config, sp.Config) {
			specs[i].Action = old.Action
		}
	}
	s.mu.Unlock()
	s.Update(specs)
}

// Close runs what is queued, for up to closeGrace (then the runs still going, and the rest of the
// queues, are cancelled), and closes every action: a digest still waiting is sent.
func (s *Set) Close() {
	s.CloseWithin(closeGrace)
}

// CloseWithin is Close with grace instead of closeGrace.
func (s *Set) CloseWithin(grace time.Duration) {
	stop := time.AfterFunc(grace, s.cancel)
	defer stop.Stop()
	s.hub.Close()
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
			if w.stopped > 0 {
				s.rep.Dropped(sp.Name, sp.Type, w.stopped, sp.Queue)
			}
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
	if w.set.ctx.Err() != nil {
		w.stopped++ // closing, and its grace is over
		return
	}
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
