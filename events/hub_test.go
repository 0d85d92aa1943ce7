package events

import (
	"net/netip"
	"sync"
	"testing"
)

func TestHubDeliversInOrderAndDropsOldest(t *testing.T) {
	h := NewHub()
	release := make(chan struct{})
	var mu sync.Mutex
	var slow, fast []int
	h.Subscribe("slow", 3, func(ev Event) {
		<-release
		mu.Lock()
		slow = append(slow, ev.Count)
		mu.Unlock()
	})
	h.Subscribe("fast", 100, func(ev Event) {
		mu.Lock()
		fast = append(fast, ev.Count)
		mu.Unlock()
	})
	p := netip.MustParsePrefix("192.0.2.7/32")
	h.Publish(Event{Kind: Ban, Prefix: p, Count: 1})
	// The slow subscriber may or may not have taken event 1 off its queue yet; hold until it has.
	for {
		st := h.Stats()[0]
		if st.Queued == 0 {
			break
		}
	}
	for i := 2; i <= 10; i++ {
		h.Publish(Event{Kind: Ban, Prefix: p, Count: i})
	}
	close(release)
	h.Close()
	if len(fast) != 10 {
		t.Fatalf("fast subscriber got %v, want 1..10", fast)
	}
	for i, n := range fast {
		if n != i+1 {
			t.Fatalf("fast subscriber got %v, want 1..10 in order", fast)
		}
	}
	want := []int{1, 8, 9, 10} // 1 was being handled; 2..7 dropped, the newest 3 kept
	if len(slow) != len(want) {
		t.Fatalf("slow subscriber got %v, want %v", slow, want)
	}
	for i := range want {
		if slow[i] != want[i] {
			t.Fatalf("slow subscriber got %v, want %v", slow, want)
		}
	}
	st := h.Stats()
	if len(st) != 0 {
		t.Fatalf("after Close, Stats = %v, want none", st)
	}
}

func TestHubStatsCountDrops(t *testing.T) {
	h := NewHub()
	block := make(chan struct{})
	h.Subscribe("a", 1, func(Event) { <-block })
	for i := 0; i < 5; i++ {
		h.Publish(Event{Kind: Unban})
	}
	// One is being handled or queued; of the other four at least three were dropped.
	st := h.Stats()[0]
	if st.Dropped < 3 || st.Dropped > 4 {
		t.Fatalf("dropped = %d, want 3 or 4", st.Dropped)
	}
	close(block)
	h.Close()
}

func TestOriginNames(t *testing.T) {
	for _, k := range []OriginKind{OriginFilter, OriginManual, OriginRestored, OriginPeer} {
		got, err := ParseOriginKind(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseOriginKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if s := (Origin{Kind: OriginManual, UID: 0}).String(); s != "manual (uid 0)" {
		t.Fatalf("manual origin = %q", s)
	}
	if s := (Origin{Kind: OriginPeer, Peer: "h1"}).String(); s != "peer h1" {
		t.Fatalf("peer origin = %q", s)
	}
}

// TestRing: the queue keeps the newest size events in order, drops the oldest past size, and lets
// its array go once drained.
func TestRing(t *testing.T) {
	var r ring
	const size = 100
	dropped := 0
	for i := range 250 {
		if r.push(Event{Count: i}, size) {
			dropped++
		}
		if i == 20 { // take a few off while it grows, so that it wraps around
			for want := range 5 {
				if got := r.pop().Count; got != want {
					t.Fatalf("pop = %d, want %d", got, want)
				}
			}
		}
	}
	if r.n != size || len(r.buf) != size || dropped != 250-5-size {
		t.Fatalf("%d waiting in an array of %d, %d dropped; want %d, %d, %d", r.n, len(r.buf), dropped, size, size, 250-5-size)
	}
	for want := 150; want < 250; want++ {
		if got := r.pop().Count; got != want {
			t.Fatalf("pop = %d, want %d", got, want)
		}
	}
	if r.n != 0 || r.buf != nil {
		t.Errorf("drained: %d waiting, array of %d kept", r.n, len(r.buf))
	}
	r.push(Event{Count: 1}, 1)
	if !r.push(Event{Count: 2}, 1) || r.pop().Count != 2 {
		t.Error("a queue of one keeps the newest")
	}
}
