package jails

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// TestEndedBans: a ban that expires and one that is lifted are remembered, with their rule, origin
// and entries, when and why they ended; they survive a restore from the checkpointed State (through
// the hand-written encoder), and a jail keeps the latest EndedKept only, in the order they ended.
func TestEndedBans(t *testing.T) {
	h := newHarness(t, settings())
	for i := 0; i < 3; i++ {
		h.fail("192.0.2.7", time.Duration(i)*time.Second)
	}
	if _, err := h.e.Ban("sshd", "198.51.100.9", time.Hour, manual); err != nil {
		t.Fatal(err)
	}
	h.clock.t = t0.Add(2 * time.Minute)
	if _, err := h.e.Unban("sshd", "198.51.100.9", manual); err != nil {
		t.Fatal(err)
	}
	h.clock.t = t0.Add(time.Hour)
	h.e.Expire(h.clock.t) // 192.0.2.7's 10 minutes are over

	got := h.e.Ended("sshd")
	if len(got) != 2 {
		t.Fatalf("Ended = %+v, want the unban and the expiry", got)
	}
	lifted, expired := got[0], got[1]
	if lifted.Prefix.String() != "198.51.100.9/32" || lifted.Reason != "manual" || !lifted.Ended.Equal(t0.Add(2*time.Minute)) ||
		lifted.Origin != manual {
		t.Errorf("the lifted ban: %+v", lifted)
	}
	if expired.Prefix.String() != "192.0.2.7/32" || expired.Reason != "expired" || !expired.Ended.Equal(expired.Expires) ||
		expired.Rule == "" || len(expired.AllEntries()) != 3 || expired.AllEntries()[2].Message != failMsg("192.0.2.7") {
		t.Errorf("the expired ban: %+v", expired)
	}
	// A new ban of a banned prefix replaces it: the first is an ended ban, with its entries.
	h.clock.t = t0.Add(2 * time.Hour)
	for i := 0; i < 3; i++ {
		h.fail("192.0.2.8", 2*time.Hour+time.Duration(i)*time.Second)
	}
	if _, err := h.e.Ban("sshd", "192.0.2.8", 24*time.Hour, manual); err != nil {
		t.Fatal(err)
	}
	if l := h.e.Ended("sshd"); len(l) != 3 || l[2].Prefix.String() != "192.0.2.8/32" || l[2].Reason != "replaced" ||
		!l[2].Ended.Equal(h.clock.t) || len(l[2].AllEntries()) != 3 || l[2].Origin != (events.Origin{}) {
		t.Errorf("after a ban replaced another, Ended = %+v", l)
	}
	if b := h.e.Bans("sshd"); len(b) != 1 || b[0].Origin != manual || !b[0].Expires.Equal(h.clock.t.Add(24*time.Hour)) {
		t.Errorf("the replacing ban: %+v", b)
	}
	got = h.e.Ended("sshd")
	if h.e.Ended("nope") != nil {
		t.Error("Ended of a jail that is not configured")
	}

	// Through the checkpoint's encoder and encoding/json's decoder, into a fresh engine.
	st := h.e.Snapshot()
	var back State
	if err := json.Unmarshal(st.AppendJSON(nil), &back); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, settings())
	h2.clock.t = h.clock.t
	if err := h2.e.Restore(back); err != nil {
		t.Fatal(err)
	}
	if after := h2.e.Ended("sshd"); !reflect.DeepEqual(fmt.Sprint(after), fmt.Sprint(got)) {
		t.Errorf("after the restore, Ended =\n%+v\nwant\n%+v", after, got)
	}

	// The cap: the oldest are forgotten first, the rest stay in order, through a restore too.
	for i := 0; i < EndedKept+5; i++ {
		a := fmt.Sprintf("198.51.100.%d", 10+i%200)
		h2.e.Ban("sshd", a, time.Hour, manual)
		h2.clock.t = h2.clock.t.Add(time.Second)
		if _, err := h2.e.Unban("sshd", a, manual); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []*Engine{h2.e, restored(t, h2, settings()).e} {
		l := e.Ended("sshd")
		if len(l) != EndedKept {
			t.Fatalf("%d ended bans kept, want %d", len(l), EndedKept)
		}
		for i := 1; i < len(l); i++ {
			if !l[i-1].Ended.Before(l[i].Ended) {
				t.Fatalf("ended bans out of order at %d: %v then %v", i, l[i-1].Ended, l[i].Ended)
			}
		}
		if last := l[len(l)-1].Prefix.String(); last != fmt.Sprintf("198.51.100.%d/32", 10+(EndedKept+4)%200) {
			t.Errorf("the latest ended ban is %s", last)
		}
	}
}
