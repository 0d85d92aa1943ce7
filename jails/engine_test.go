package jails

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// manual is the origin of the tests' manual bans.
var manual = events.Origin{Kind: events.OriginManual}

// fakeClock is the engine's now().
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// fakeFirewall keeps the elements a kernel would hold, with their expiry on the fake clock.
type fakeFirewall struct {
	clock *fakeClock
	elems map[string]time.Time // "jail prefix" -> expires
	calls []string
}

func newFakeFirewall(c *fakeClock) *fakeFirewall {
	return &fakeFirewall{clock: c, elems: map[string]time.Time{}}
}

func (f *fakeFirewall) Ban(jail string, p netip.Prefix, timeout time.Duration) error {
	f.elems[jail+" "+p.String()] = f.clock.t.Add(timeout)
	f.calls = append(f.calls, fmt.Sprintf("ban %s %s %s", jail, p, timeout))
	return nil
}

func (f *fakeFirewall) Unban(jail string, p netip.Prefix) error {
	k := jail + " " + p.String()
	if _, ok := f.elems[k]; !ok {
		return errors.New("fake: not banned")
	}
	delete(f.elems, k)
	f.calls = append(f.calls, fmt.Sprintf("unban %s %s", jail, p))
	return nil
}

// live returns the elements the kernel still holds at the clock's time.
func (f *fakeFirewall) live() []string {
	var out []string
	for k, exp := range f.elems {
		if f.clock.t.Before(exp) {
			out = append(out, k+" until "+exp.Format(time.RFC3339Nano))
		}
	}
	sort.Strings(out)
	return out
}

type fakeEvents struct{ log []string }

func (e *fakeEvents) Banned(b Ban) {
	e.log = append(e.log, fmt.Sprintf("banned %s %s %s..%s #%d", b.Jail, b.Prefix, b.BannedAt.Format(time.TimeOnly), b.Expires.Format(time.TimeOnly), b.Count))
}
func (e *fakeEvents) Unbanned(b Ban, reason string, _ events.Origin) {
	e.log = append(e.log, fmt.Sprintf("unbanned %s %s %s", b.Jail, b.Prefix, reason))
}
func (e *fakeEvents) Failed(jail string, a netip.Addr, at time.Time, rule string) {
	e.log = append(e.log, fmt.Sprintf("failed %s %s %s %s", jail, a, at.Format(time.TimeOnly), rule))
}

func (e *fakeEvents) count(prefix string) int {
	n := 0
	for _, l := range e.log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

type harness struct {
	clock *fakeClock
	fw    *fakeFirewall
	ev    *fakeEvents
	e     *Engine
}

var selfAddrs = []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("2001:db8:ffff::1/128")}

func newHarness(t testing.TB, s Settings) *harness {
	t.Helper()
	h := &harness{clock: &fakeClock{t: t0}, ev: &fakeEvents{}}
	h.fw = newFakeFirewall(h.clock)
	h.e = NewEngine(h.fw, h.ev, h.clock.now, WithSelfAddrs(func() ([]netip.Prefix, error) { return selfAddrs, nil }))
	f, _ := SSHD(ModeNormal)
	if err := h.e.SetJail("sshd", f, s); err != nil {
		t.Fatal(err)
	}
	return h
}

func settings() Settings {
	return Settings{BanTime: 10 * time.Minute, FindTime: 10 * time.Minute, MaxRetry: 3, IPv6Prefix: 128, IgnoreSelf: true,
		IgnoreIP: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}}
}

func failMsg(addr string) string { return "Failed password for root from " + addr + " port 22 ssh2" }

// fail handles a failure from addr at t0+off, with the clock at that time too (live).
func (h *harness) fail(addr string, off time.Duration) bool {
	at := t0.Add(off)
	if at.After(h.clock.t) {
		h.clock.t = at
	}
	return h.e.Handle("sshd", events.Entry{Time: at, Message: failMsg(addr)})
}

// TestBanEntries: a ban carries the journal entries behind it, oldest first: the failures its window
// kept within findtime, then the one that reached maxretry, each with its PID; completed by time and
// PID, as the daemon does from the journal (CompleteEntries), the engine's ban has their messages and
// cursors.
func TestBanEntries(t *testing.T) {
	h := newHarness(t, settings())       // maxretry 3
	journal := map[string]events.Entry{} // the entries a lookup finds, by time and PID
	a := "192.0.2.60"
	for i, off := range []time.Duration{0, 11 * time.Minute, 12 * time.Minute, 13 * time.Minute} {
		h.clock.t = t0.Add(off)
		e := events.Entry{Time: t0.Add(off), Message: fmt.Sprintf("Failed password for root from %s port %d ssh2", a, 40000+i), PID: 100 + i, Cursor: fmt.Sprint("c", i)}
		journal[fmt.Sprint(e.Time.UnixNano(), e.PID)] = e
		e.Cursor = "" // the reader gives a cursor to the last entry of a batch only
		if i == 3 {
			e.Cursor = "c3"
		}
		h.e.Handle("sshd", e)
	}
	bans := h.e.Bans("sshd")
	if len(bans) == 1 { // as the daemon does: complete them by time and PID, and hand them back
		entries := slices.Clone(bans[0].AllEntries())
		for i, e := range entries {
			if e.Message == "" {
				entries[i] = journal[fmt.Sprint(e.Time.UnixNano(), e.PID)]
			}
		}
		h.e.CompleteEntries("sshd", bans[0].Prefix, bans[0].BannedAt.Add(time.Nanosecond), entries) // not this ban
		if b := h.e.Bans("sshd"); len(b) != 1 || len(b[0].bare) == 0 {
			t.Fatalf("CompleteEntries for another ban of the prefix changed it: %+v", b)
		}
		h.e.CompleteEntries("sshd", bans[0].Prefix, bans[0].BannedAt, entries)
		bans = h.e.Bans("sshd")
	}
	if len(bans) != 1 {
		t.Fatalf("bans %+v", bans)
	}
	if len(bans[0].bare) != 0 {
		t.Errorf("completed entries are still kept as bare ones: %+v", bans[0])
	}
	var got []string
	for _, e := range bans[0].AllEntries() {
		got = append(got, fmt.Sprintf("%s %s %d", e.Time.Sub(t0), strings.Fields(e.Message)[7], e.PID))
	}
	// The first failure is out of findtime.
	if want := []string{"11m0s 40001 101", "12m0s 40002 102", "13m0s 40003 103"}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	for i, e := range bans[0].AllEntries() {
		if want := fmt.Sprint("c", i+1); e.Cursor != want {
			t.Errorf("entry %d: cursor %q, want %q", i, e.Cursor, want)
		}
	}
	if bans[0].Rule == "" || bans[0].Origin.Kind != events.OriginFilter {
		t.Errorf("ban %+v", bans[0])
	}
}

func TestWindow(t *testing.T) {
	h := newHarness(t, settings())
	h.fail("192.0.2.1", 0)
	h.fail("192.0.2.1", 5*time.Minute)
	h.fail("192.0.2.1", 12*time.Minute) // the first is out of the window now
	if n := len(h.e.Bans("sshd")); n != 0 {
		t.Fatalf("banned after 2 failures within findtime: %v", h.e.Bans(""))
	}
	if st, _ := h.e.Stats("sshd"); st.CurrentlyFailed != 1 || st.TotalFailed != 3 {
		t.Errorf("stats %+v", st)
	}
	h.fail("192.0.2.1", 13*time.Minute)
	bans := h.e.Bans("sshd")
	if len(bans) != 1 || bans[0].Prefix != netip.MustParsePrefix("192.0.2.1/32") || !bans[0].Expires.Equal(t0.Add(23*time.Minute)) {
		t.Fatalf("bans %+v", bans)
	}
	if got := h.fw.calls; len(got) != 1 || got[0] != "ban sshd 192.0.2.1/32 10m0s" {
		t.Errorf("firewall calls %v", got)
	}
	// failures during the ban are failures, but start no window: no second ban
	for i := range 5 {
		if !h.fail("192.0.2.1", 14*time.Minute+time.Duration(i)*time.Second) {
			t.Error("not a failure")
		}
	}
	if h.ev.count("banned") != 1 {
		t.Errorf("events %v", h.ev.log)
	}
	// after expiry, counting starts afresh
	h.clock.t = t0.Add(23 * time.Minute)
	if exp := h.e.Expire(h.clock.t); len(exp) != 1 {
		t.Fatalf("expired %v", exp)
	}
	if h.ev.log[len(h.ev.log)-1] != "unbanned sshd 192.0.2.1/32 expired" || len(h.fw.calls) != 1 {
		t.Errorf("expire: events %v, firewall %v", h.ev.log, h.fw.calls)
	}
	h.fail("192.0.2.1", 24*time.Minute)
	h.fail("192.0.2.1", 25*time.Minute)
	if len(h.e.Bans("")) != 0 {
		t.Error("window survived the ban")
	}
	st, _ := h.e.Stats("sshd")
	if st.TotalBanned != 1 || st.TotalFailed != 11 || st.CurrentlyBanned != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNonFailuresAndIgnores(t *testing.T) {
	h := newHarness(t, settings())
	for _, m := range []string{"Accepted password for root from 192.0.2.1 port 22 ssh2", "Connection closed by 192.0.2.1 port 22"} {
		if h.e.Handle("sshd", events.Entry{Time: t0, Message: m}) {
			t.Errorf("%q is a failure", m)
		}
	}
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "203.0.113.1", "2001:db8:ffff::1", "::ffff:10.0.0.1"} {
		for range 5 {
			if h.fail(a, 0) {
				t.Errorf("%s not ignored", a)
			}
		}
	}
	if len(h.ev.log) != 0 || len(h.fw.calls) != 0 {
		t.Errorf("events %v firewall %v", h.ev.log, h.fw.calls)
	}
	if _, err := h.e.Ban("sshd", "10.0.0.5", 0, manual); !errors.Is(err, ErrIgnored) {
		t.Errorf("manual ban of ignored: %v", err)
	}
	if h.e.Handle("nope", events.Entry{Time: t0, Message: failMsg("192.0.2.1")}) {
		t.Error("unknown jail handled")
	}
	// ignoreself off: the host's address counts
	s := settings()
	s.IgnoreSelf = false
	h2 := newHarness(t, s)
	if !h2.fail("203.0.113.1", 0) {
		t.Error("ignoreself=false still ignores")
	}
}

func TestIncrements(t *testing.T) {
	for _, overall := range []bool{false, true} {
		t.Run(fmt.Sprint("overall=", overall), func(t *testing.T) {
			s := settings()
			s.MaxRetry = 1
			s.Increment = Increment{Enabled: true, Factor: 2, MaxTime: 30 * time.Minute, OverallJails: overall}
			h := newHarness(t, s)
			f, _ := SSHD(ModeNormal)
			h.e.SetJail("other", f, s)
			h.e.Handle("other", events.Entry{Time: t0, Message: failMsg("192.0.2.1")}) // a ban in another jail
			var got []time.Duration
			off := time.Duration(0)
			for range 4 {
				h.fail("192.0.2.1", off)
				b := h.e.Bans("sshd")[0]
				got = append(got, b.Expires.Sub(b.BannedAt))
				off += 31 * time.Minute
				h.clock.t = t0.Add(off)
				h.e.Expire(h.clock.t)
			}
			want := []time.Duration{10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute}
			if overall {
				want = []time.Duration{20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ban times %v, want %v", got, want)
			}
		})
	}
}

func TestIPv6Prefix(t *testing.T) {
	s := settings()
	s.IPv6Prefix = 64
	h := newHarness(t, s)
	h.fail("2001:db8:1:2::1", 0)
	h.fail("2001:db8:1:2::2", time.Second)
	h.fail("2001:db8:1:2:ffff::3", 2*time.Second)
	bans := h.e.Bans("sshd")
	if len(bans) != 1 || bans[0].Prefix != netip.MustParsePrefix("2001:db8:1:2::/64") {
		t.Fatalf("bans %v", bans)
	}
	for i := range 5 {
		h.fail(fmt.Sprintf("2001:db8:1:2::%x", 100+i), 3*time.Second)
	}
	if _, err := h.e.Ban("sshd", "2001:db8:1:2::77", time.Minute, manual); err != nil {
		t.Fatal(err)
	}
	if len(h.e.Bans("sshd")) != 1 || len(h.fw.calls) != 1 {
		t.Errorf("address inside a banned prefix banned again: %v %v", h.e.Bans(""), h.fw.calls)
	}
	// A longer ban of it is a longer ban of its /64, which must not end with the shorter one.
	if b, err := h.e.Ban("sshd", "2001:db8:1:2::77", 10*time.Hour, manual); err != nil || b.Prefix != netip.MustParsePrefix("2001:db8:1:2::/64") || b.Expires.Sub(b.BannedAt) != 10*time.Hour {
		t.Errorf("longer ban inside the /64: %v, %v", b, err)
	}
	// IPv4 is unaffected by ipv6_prefix
	for i := range 3 {
		h.fail("192.0.2.9", time.Duration(i)*time.Second)
	}
	if b := h.e.Bans("sshd"); len(b) != 2 || b[0].Prefix.Bits() != 32 {
		t.Errorf("bans %v", b)
	}
	// unban by any address of the prefix
	if _, err := h.e.Unban("sshd", "2001:db8:1:2::5", manual); err != nil {
		t.Fatal(err)
	}
}

func TestManualBanUnban(t *testing.T) {
	h := newHarness(t, settings())
	b, err := h.e.Ban("sshd", "192.0.2.5", time.Hour, manual)
	if err != nil || !b.Expires.Equal(t0.Add(time.Hour)) || b.Count != 1 {
		t.Fatalf("Ban = %+v, %v", b, err)
	}
	if _, err := h.e.Ban("sshd", "not-an-ip", 0, manual); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("invalid: %v", err)
	}
	if _, err := h.e.Ban("nope", "192.0.2.5", 0, manual); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("no jail: %v", err)
	}
	if _, err := h.e.Unban("sshd", "192.0.2.6", manual); !errors.Is(err, ErrNotBanned) {
		t.Errorf("not banned: %v", err)
	}
	if _, err := h.e.Ban("sshd", "198.51.100.0/24", 0, manual); err != nil {
		t.Fatal(err)
	}
	if n, err := h.e.UnbanAll("", manual); n != 2 || err != nil {
		t.Errorf("UnbanAll = %d, %v", n, err)
	}
	if len(h.fw.live()) != 0 || h.ev.count("unbanned") != 2 {
		t.Errorf("firewall %v events %v", h.fw.live(), h.ev.log)
	}
}

// TestBanPrefix: a peer's ban goes in with its expiry, count and origin; the jail's ignore list wins
// over it, and a prefix with host bits set or an expiry already past is refused.
func TestBanPrefix(t *testing.T) {
	h := newHarness(t, settings())
	peer := events.Origin{Kind: events.OriginPeer, Peer: "h2"}
	p := netip.MustParsePrefix("192.0.2.40/32")
	b, err := h.e.BanPrefix("sshd", p, t0.Add(time.Hour), 4, peer)
	if err != nil || !b.Expires.Equal(t0.Add(time.Hour)) || b.Count != 4 || b.Origin != peer {
		t.Fatalf("BanPrefix = %+v, %v", b, err)
	}
	if got := h.fw.live(); len(got) != 1 || !strings.HasPrefix(got[0], "sshd 192.0.2.40/32") {
		t.Fatalf("firewall %v", got)
	}
	if b, err := h.e.BanPrefix("sshd", netip.MustParsePrefix("192.0.2.41/32"), time.Time{}, 0, peer); err != nil ||
		!b.Expires.Equal(t0.Add(10*time.Minute)) || b.Count != 1 {
		t.Fatalf("BanPrefix with no expiry = %+v, %v; want the jail's bantime", b, err)
	}
	for _, c := range []struct {
		p       string
		expires time.Time
		want    error
	}{
		{"10.1.0.0/16", t0.Add(time.Hour), ErrIgnored},    // inside ignoreip 10.0.0.0/8
		{"8.0.0.0/5", t0.Add(time.Hour), ErrIgnored},      // holds 10.0.0.0/8
		{"203.0.113.0/24", t0.Add(time.Hour), ErrIgnored}, // holds the host's own 203.0.113.1
		{"192.0.2.1/24", t0.Add(time.Hour), ErrInvalidAddress},
		{"192.0.2.50/32", t0.Add(-time.Second), ErrOver},
	} {
		if _, err := h.e.BanPrefix("sshd", netip.MustParsePrefix(c.p), c.expires, 0, peer); !errors.Is(err, c.want) {
			t.Errorf("BanPrefix(%s) = %v, want %v", c.p, err, c.want)
		}
	}
	if _, err := h.e.BanPrefix("nope", p, t0.Add(time.Hour), 0, peer); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("no jail: %v", err)
	}
}

// TestUnbanForgives: a manual unban forgives the failures counted so far and those read later with
// an earlier timestamp; new failures count afresh.
func TestUnbanForgives(t *testing.T) {
	h := newHarness(t, settings())
	h.fail("192.0.2.1", 0)
	h.fail("192.0.2.1", time.Second)
	h.fail("192.0.2.1", 2*time.Second) // banned
	h.clock.t = t0.Add(time.Minute)
	if _, err := h.e.Unban("sshd", "192.0.2.1", manual); err != nil {
		t.Fatal(err)
	}
	// a backlog of failures from before the unban: forgiven
	for i := range 5 {
		h.e.Handle("sshd", events.Entry{Time: t0.Add(3*time.Second + time.Duration(i)*time.Second), Message: failMsg("192.0.2.1")})
	}
	if len(h.e.Bans("")) != 0 {
		t.Fatalf("forgiven failures banned again: %v", h.e.Bans(""))
	}
	// the same through a snapshot and restore
	h2 := restored(t, h, settings())
	for i := range 5 {
		h2.e.Handle("sshd", events.Entry{Time: t0.Add(10*time.Second + time.Duration(i)*time.Second), Message: failMsg("192.0.2.1")})
	}
	if len(h2.e.Bans("")) != 0 {
		t.Fatalf("restored engine banned forgiven failures")
	}
	// new failures count
	for i := range 3 {
		h2.fail("192.0.2.1", 2*time.Minute+time.Duration(i)*time.Second)
	}
	if b := h2.e.Bans(""); len(b) != 1 || b[0].Count != 2 {
		t.Fatalf("bans %v", b)
	}
}

// TestBacklogBanInThePast: a ban decided from old entries whose time is over is recorded, not
// installed nor announced, and failures during it do not count.
func TestBacklogBanInThePast(t *testing.T) {
	h := newHarness(t, settings())
	h.clock.t = t0.Add(time.Hour)
	for i := range 6 {
		h.e.Handle("sshd", events.Entry{Time: t0.Add(time.Duration(i) * time.Second), Message: failMsg("192.0.2.1")})
	}
	if len(h.fw.calls) != 0 || h.ev.count("banned") != 0 || len(h.e.Bans("")) != 0 {
		t.Fatalf("past ban installed: %v %v", h.fw.calls, h.ev.log)
	}
	st, _ := h.e.Stats("sshd")
	if st.TotalBanned != 1 || st.TotalFailed != 6 {
		t.Errorf("stats %+v", st)
	}
	// the history counts it: the next ban is #2
	for i := range 3 {
		h.e.Handle("sshd", events.Entry{Time: t0.Add(55*time.Minute + time.Duration(i)*time.Second), Message: failMsg("192.0.2.1")})
	}
	if b := h.e.Bans(""); len(b) != 1 || b[0].Count != 2 {
		t.Errorf("bans %v", b)
	}
}

func TestMaxTracked(t *testing.T) {
	s := settings()
	s.MaxTracked = 3
	h := newHarness(t, s)
	for i := 1; i <= 4; i++ {
		h.fail(fmt.Sprintf("192.0.2.%d", i), time.Duration(i)*time.Second)
	}
	h.fail("192.0.2.2", 5*time.Second) // refreshes .2: the stalest is now .3
	h.fail("192.0.2.5", 6*time.Second)
	var keys []string
	for _, w := range h.e.Snapshot().Jails[0].Windows {
		keys = append(keys, w.Prefix.String())
	}
	if want := []string{"192.0.2.4/32", "192.0.2.2/32", "192.0.2.5/32"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("windows %v, want %v", keys, want)
	}
}

// restored returns a fresh harness at the same clock, whose engine restored h's snapshot through JSON.
func restored(t testing.TB, h *harness, s Settings) *harness {
	t.Helper()
	data, err := json.Marshal(h.e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, s)
	h2.clock.t = h.clock.t
	if err := h2.e.Restore(st); err != nil {
		t.Fatal(err)
	}
	if len(h2.ev.log) != 0 {
		t.Fatalf("Restore announced %v", h2.ev.log)
	}
	return h2
}

// op is one step of a scripted run.
type op func(h *harness)

func script() []op {
	var ops []op
	at := func(d time.Duration) op {
		return func(h *harness) {
			if t := t0.Add(d); t.After(h.clock.t) {
				h.clock.t = t
			}
		}
	}
	entry := func(d time.Duration, msg string) op {
		return func(h *harness) { h.e.Handle("sshd", events.Entry{Time: t0.Add(d), Message: msg}) }
	}
	addrs := []string{"192.0.2.1", "192.0.2.2", "2001:db8:1::1", "2001:db8:1::2", "198.51.100.7", "10.0.0.1"}
	// a backlog first (clock an hour ahead), then live traffic
	for i := range 12 {
		ops = append(ops, entry(time.Duration(i)*20*time.Second, failMsg(addrs[i%3])))
	}
	for i := range 60 {
		d := time.Hour + time.Duration(i)*40*time.Second
		ops = append(ops, at(d), entry(d, failMsg(addrs[i%len(addrs)])))
		if i%7 == 0 {
			ops = append(ops, entry(d, fmt.Sprintf("Accepted password for root from 192.0.2.%d port 22 ssh2", 2+i%2)))
		}
		switch i {
		case 10:
			ops = append(ops, func(h *harness) { h.e.Ban("sshd", "203.0.113.50", 0, manual) })
		case 20:
			ops = append(ops, func(h *harness) { h.e.Unban("sshd", "192.0.2.1", manual) })
		case 30:
			ops = append(ops, func(h *harness) { h.e.Ban("sshd", "2001:db8:2::/48", 5*time.Minute, manual) })
		case 45:
			ops = append(ops, func(h *harness) { h.e.UnbanAll("sshd", manual) })
		}
		if i%5 == 0 {
			ops = append(ops, func(h *harness) { h.e.Expire(h.clock.t) })
		}
	}
	return ops
}

// TestSnapshotRestoreEquivalence snapshots a run at every step, restores into a fresh engine,
// continues, and compares with the run that never stopped: same events, same final state, same
// firewall elements.
func TestSnapshotRestoreEquivalence(t *testing.T) {
	s := settings()
	s.MaxRetry = 3
	s.IPv6Prefix = 64
	s.Increment = Increment{Enabled: true, Factor: 2, MaxTime: time.Hour}
	s.MaxTracked = 4
	// Logins trust 192.0.2.2 now and then, which fails too: the trust is state like the rest.
	s.Trust = TrustSettings{After: 15 * time.Minute, Methods: []string{"password"}, MaxTrusted: 2}
	ops := script()
	full := newHarness(t, s)
	var eventsAt []int
	sawTrust := false
	for _, o := range ops {
		eventsAt = append(eventsAt, len(full.ev.log))
		o(full)
		sawTrust = sawTrust || len(full.e.Trusted("sshd")) > 0
	}
	if !sawTrust {
		t.Fatal("the script never trusts an address")
	}
	if full.ev.count("banned") < 3 {
		t.Fatalf("script bans too little: %v", full.ev.log)
	}
	want, _ := json.Marshal(full.e.Snapshot())
	for k := range ops {
		a := newHarness(t, s)
		for _, o := range ops[:k] {
			o(a)
		}
		b := restored(t, a, s)
		for _, o := range ops[k:] {
			o(b)
		}
		got, _ := json.Marshal(b.e.Snapshot())
		if string(got) != string(want) {
			t.Fatalf("restored at step %d: state\n%s\nwant\n%s", k, got, want)
		}
		if strings.Join(b.ev.log, "\n") != strings.Join(full.ev.log[eventsAt[k]:], "\n") {
			t.Fatalf("restored at step %d: events\n%v\nwant\n%v", k, b.ev.log, full.ev.log[eventsAt[k]:])
		}
		if !reflect.DeepEqual(b.fw.live(), full.fw.live()) {
			t.Fatalf("restored at step %d: firewall %v, want %v", k, b.fw.live(), full.fw.live())
		}
	}
}

func TestRemoveJail(t *testing.T) {
	h := newHarness(t, settings())
	h.e.Ban("sshd", "192.0.2.1", 0, manual)
	h.e.RemoveJail("sshd")
	if h.ev.log[len(h.ev.log)-1] != "unbanned sshd 192.0.2.1/32 jail removed" {
		t.Errorf("events %v", h.ev.log)
	}
	if _, err := h.e.Stats("sshd"); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("Stats: %v", err)
	}
}

func TestNextExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := NewEngine(newFakeFirewall(clock), nopEvents{}, clock.now, WithSelfAddrs(func() ([]netip.Prefix, error) { return nil, nil }))
	f, _ := SSHD("normal")
	e.SetJail("sshd", f, Settings{BanTime: time.Hour, FindTime: time.Hour, MaxRetry: 1})
	if _, ok := e.NextExpiry(); ok {
		t.Fatalf("NextExpiry with no bans: ok")
	}
	e.Ban("sshd", "192.0.2.1", 10*time.Minute, manual)
	e.Ban("sshd", "192.0.2.2", 5*time.Minute, manual)
	start := clock.t
	next, ok := e.NextExpiry()
	if !ok || next.After(start.Add(5*time.Minute)) {
		t.Fatalf("NextExpiry = %v %v, want at or before %v", next, ok, start.Add(5*time.Minute))
	}
	clock.t = start.Add(6 * time.Minute)
	e.Expire(clock.t)
	if next, ok := e.NextExpiry(); !ok || !next.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("NextExpiry after the first expired = %v %v, want %v", next, ok, start.Add(10*time.Minute))
	}
}
