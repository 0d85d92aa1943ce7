package jails

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// TestLedgerMatchesMap: whatever the order of sets, deletes, views, merges offered from other
// goroutines and compactions, a view lists what the map held when it was taken, sorted.
func TestLedgerMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pfx := func() netip.Prefix {
		if rng.IntN(4) == 0 {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(rng.IntN(64))}), 64)
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(200))}), 32)
	}
	var tbl ledgered[int]
	var readers sync.WaitGroup
	defer readers.Wait()
	for step := range 20000 {
		switch n := rng.IntN(10); {
		case n < 6:
			tbl.set(pfx(), step)
		case n < 9:
			tbl.del(pfx())
		default:
			var want []ledgerItem[int]
			for p, v := range tbl.prefixMap.sorted() {
				want = append(want, ledgerItem[int]{p, v})
			}
			v := tbl.view()
			check := func() {
				if got := v.items(); !slices.Equal(got, want) {
					t.Errorf("step %d: view lists %d items, want %d", step, len(got), len(want))
				}
			}
			if rng.IntN(2) == 0 {
				check() // merged here, installed at the next view
			} else {
				readers.Add(1)
				go func() { defer readers.Done(); check() }()
			}
		}
	}
	if tbl.l == nil || len(tbl.l.log) > ledgerCompactAt && len(tbl.l.log) > len(tbl.l.base.items) {
		t.Errorf("log not compacted: %d changes on a base of %d", len(tbl.l.log), len(tbl.l.base.items))
	}
}

// TestFrozenWritesTheSnapshot: a Frozen written later, after the engine went on, is the JSON of the
// State the engine had when it was frozen.
func TestFrozenWritesTheSnapshot(t *testing.T) {
	h := newHarness(t, settings())
	for i := range 40 {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
		for k := range 1 + i%4 {
			h.fail(a, time.Duration(k)*time.Second)
		}
		if i%7 == 0 {
			h.e.Unban("sshd", a, events.Origin{Kind: events.OriginManual})
		}
	}
	f := h.e.Freeze()
	want := h.e.Snapshot()
	for i := range 40 {
		h.fail(netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)}).String(), 0)
	}
	h.e.Expire(t0.Add(24 * time.Hour))
	var got bytes.Buffer
	if err := f.WriteJSON(&got); err != nil {
		t.Fatal(err)
	}
	if w := want.AppendJSON(nil); !bytes.Equal(got.Bytes(), w) {
		t.Fatalf("frozen state written as\n%s\nwant\n%s", got.Bytes(), w)
	}
	if len(want.Jails) != 1 || len(want.Jails[0].Bans) == 0 || len(want.History) == 0 {
		t.Fatalf("the test froze no bans or history: %+v", want)
	}
}

// BenchmarkFreeze100k is the checkpoint's cost under the daemon's lock with 100,000 bans and
// history records, one new ban between checkpoints (Freeze), next to what the saver goroutine
// then spends writing it (WriteJSON) and the deep copy Snapshot makes.
func BenchmarkFreeze100k(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := NewEngine(nopFirewallB{}, nopEvents{}, clock.now, WithSelfAddrs(func() ([]netip.Prefix, error) { return nil, nil }))
	f, _ := SSHD("normal")
	e.SetJail("sshd", f, Settings{BanTime: time.Hour, FindTime: time.Hour, MaxRetry: 1})
	ban := func(i int) {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		e.Handle("sshd", events.Entry{Time: clock.t, Message: "Failed password for root from " + a.String() + " port 22 ssh2"})
	}
	for i := range 100_000 {
		ban(i)
	}
	e.Freeze().WriteJSON(discard{}) // the first merge, as the daemon's first checkpoint does
	n := 100_000
	b.Run("Freeze", func(b *testing.B) {
		for range b.N {
			ban(n)
			n++
			f := e.Freeze()
			b.StopTimer()
			f.WriteJSON(discard{}) // the saver's part, measured below
			b.StartTimer()
		}
	})
	b.Run("WriteJSON", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			ban(n)
			n++
			f := e.Freeze()
			b.StartTimer()
			f.WriteJSON(discard{})
		}
	})
	b.Run("Snapshot", func(b *testing.B) {
		for range b.N {
			e.Snapshot()
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestBanListPages: reading a jail's bans a page at a time, each page after the last one's prefix,
// gives every ban once, in order, also when bans come and go between the pages.
func TestBanListPages(t *testing.T) {
	h := newHarness(t, Settings{BanTime: time.Hour, FindTime: time.Hour, MaxRetry: 1})
	for i := range 50 {
		h.fail(netip.AddrFrom4([4]byte{198, 51, 100, byte(2 * i)}).String(), 0)
	}
	var got []netip.Prefix
	after := netip.Prefix{}
	for page := 0; ; page++ {
		bans, more := h.e.BanList("sshd").Page(after, 7)
		if len(bans) > 7 || more && len(bans) != 7 {
			t.Fatalf("page %d: %d bans, more %v", page, len(bans), more)
		}
		for _, b := range bans {
			got = append(got, b.Prefix)
		}
		if !more {
			break
		}
		after = bans[len(bans)-1].Prefix
		// A ban before the cursor and one after it: the first is not listed, the second is.
		h.fail(netip.AddrFrom4([4]byte{198, 51, 100, byte(2*page + 1)}).String(), 0)
		h.fail(netip.AddrFrom4([4]byte{198, 51, 100, 200 + byte(page)}).String(), 0)
	}
	if !slices.IsSortedFunc(got, cmpPrefix) || slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Addr().As4()[3]%2 == 1 && p.Addr().As4()[3] < 100 }) {
		t.Errorf("pages listed %v", got)
	}
	if want := 50 + 8; len(got) != want { // the 50, and the 8 bans made after the cursor
		t.Errorf("pages listed %d bans, want %d: %v", len(got), want, got)
	}
}
