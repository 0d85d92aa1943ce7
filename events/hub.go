package events

import (
	"sync"
	"sync/atomic"
)

// Hub hands events to subscribers. Publish never blocks: each subscriber has its own bounded queue
// and goroutine, so a slow subscriber (a mail server, a webhook, a NATS publish) slows only itself.
// When a subscriber's queue is full, its oldest event is dropped and counted. Events reach each
// subscriber in the order they were published.
type Hub struct {
	mu     sync.Mutex
	subs   []*subscription
	closed bool
	wg     sync.WaitGroup
}

// subscription is one subscriber's queue.
type subscription struct {
	name    string
	size    int
	handle  func(Event)
	mu      sync.Mutex
	queue   ring
	wake    chan struct{}
	done    bool
	dropped atomic.Uint64
	handled atomic.Uint64
}

// NewHub returns a hub with no subscribers.
func NewHub() *Hub { return &Hub{} }

// Subscribe adds a subscriber called name whose handle runs on a goroutine of its own for each event,
// in order; at most size events wait for it (size < 1 means 1). Subscribing after Close does nothing.
func (h *Hub) Subscribe(name string, size int, handle func(Event)) {
	if size < 1 {
		size = 1
	}
	s := &subscription{name: name, size: size, handle: handle, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.subs = append(h.subs, s)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s.run()
	}()
}

// Publish queues ev for every subscriber, without waiting for any of them.
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	subs := h.subs
	h.mu.Unlock()
	for _, s := range subs {
		s.put(ev)
	}
}

// Stats are a subscriber's counters.
type Stats struct {
	Name    string
	Queued  int    // waiting now
	Handled uint64 // handed to the subscriber
	Dropped uint64 // dropped because its queue was full
}

// Stats returns every subscriber's counters, in the order they subscribed.
func (h *Hub) Stats() []Stats {
	h.mu.Lock()
	subs := h.subs
	h.mu.Unlock()
	out := make([]Stats, 0, len(subs))
	for _, s := range subs {
		s.mu.Lock()
		n := s.queue.n
		s.mu.Unlock()
		out = append(out, Stats{Name: s.name, Queued: n, Handled: s.handled.Load(), Dropped: s.dropped.Load()})
	}
	return out
}

// Close stops taking events, lets every subscriber finish what is queued for it, and waits.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	subs := h.subs
	h.subs = nil
	h.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
		s.signal()
	}
	h.wg.Wait()
}

func (s *subscription) put(ev Event) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	if s.queue.push(ev, s.size) {
		s.dropped.Add(1)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) run() {
	for {
		s.mu.Lock()
		if s.queue.n == 0 {
			done := s.done
			s.mu.Unlock()
			if done {
				return
			}
			<-s.wake
			continue
		}
		ev := s.queue.pop()
		s.mu.Unlock()
		s.handle(ev)
		s.handled.Add(1)
	}
}

// ring is a subscriber's queue: a circular buffer that grows up to the subscriber's size as events
// wait, and lets its array go once drained. Under a flood of bans the queues of the slow subscribers
// stay full; a slice that walked forward as they took events reallocated at every append past its
// end, keeping up to twice the queue's events alive and the old arrays for the collector.
type ring struct {
	buf     []Event
	head, n int // the oldest event is buf[head]; n wait
}

// ringKept is the largest array a drained ring keeps for the next event.
const ringKept = 64

// push adds ev at the end; when size events wait already it drops the oldest and reports it.
func (r *ring) push(ev Event, size int) (dropped bool) {
	if r.n == len(r.buf) && len(r.buf) < size {
		buf := make([]Event, min(max(2*len(r.buf), 16), size))
		for i := range r.n {
			buf[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = buf, 0
	}
	if r.n == len(r.buf) { // full at size: the oldest goes, and its entries with it
		r.buf[r.head] = Event{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
		dropped = true
	}
	r.buf[(r.head+r.n)%len(r.buf)] = ev
	r.n++
	return dropped
}

// pop takes the oldest event off; the ring must not be empty.
func (r *ring) pop() Event {
	ev := r.buf[r.head]
	r.buf[r.head] = Event{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if r.n == 0 {
		r.head = 0
		if len(r.buf) > ringKept {
			r.buf = nil
		}
	}
	return ev
}
