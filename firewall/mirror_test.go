package firewall

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func changesString(cs []change) string {
	var out []string
	for _, c := range cs {
		s := c.prefix.String()
		if c.timeout != 0 {
			s += "@" + c.timeout.String()
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestMirror(t *testing.T) {
	type step struct {
		ban, unban string
		d          time.Duration
		at         time.Duration // since t0
		flush      bool
		dels, adds string // expected on flush
		unbanOK    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new bans", []step{
			{ban: "192.0.2.7", d: time.Hour},
			{ban: "2001:db8::1", d: time.Minute},
			{flush: true, adds: "192.0.2.7/32@1h0m0s 2001:db8::1/128@1m0s"},
			{flush: true},
		}},
		{"extend is delete and add", []step{
			{ban: "192.0.2.7", d: time.Hour},
			{flush: true, adds: "192.0.2.7/32@1h0m0s"},
			{ban: "192.0.2.7", d: 2 * time.Hour, at: time.Minute},
			{flush: true, at: time.Minute, dels: "192.0.2.7/32", adds: "192.0.2.7/32@2h0m0s"},
		}},
		{"same deadline is no change", []step{
			{ban: "192.0.2.7", d: time.Hour},
			{flush: true, adds: "192.0.2.7/32@1h0m0s"},
			{ban: "192.0.2.7", d: time.Hour - 500*time.Millisecond, at: 500 * time.Millisecond},
			{flush: true},
		}},
		{"addresses keep their elements under a prefix", []step{
			{ban: "2001:db8::1", d: time.Hour},
			{ban: "2001:db8::2", d: 3 * time.Hour},
			{ban: "2001:db9::1", d: time.Hour},
			{flush: true, adds: "2001:db8::1/128@1h0m0s 2001:db8::2/128@3h0m0s 2001:db9::1/128@1h0m0s"},
			{ban: "2001:db8::/64", d: 2 * time.Hour},
			{flush: true, adds: "2001:db8::/64@2h0m0s"},
			{unban: "2001:db8::/64", unbanOK: true},
			{flush: true, dels: "2001:db8::/64"},
			{unban: "2001:db8::2", unbanOK: true},
		}},
		{"address inside a prefix gets its own element", []step{
			{ban: "10.0.0.0/8", d: time.Hour},
			{flush: true, adds: "10.0.0.0/8@1h0m0s"},
			{ban: "10.2.3.4", d: 2 * time.Hour},
			{flush: true, adds: "10.2.3.4/32@2h0m0s"},
			{unban: "10.0.0.0/8", unbanOK: true},
			{flush: true, dels: "10.0.0.0/8"},
			{unban: "10.2.3.4", unbanOK: true},
			{flush: true, dels: "10.2.3.4/32"},
		}},
		{"prefix absorbs the prefixes it outlasts", []step{
			{ban: "10.1.0.0/16", d: time.Hour},
			{ban: "10.0.0.0/8", d: 2 * time.Hour},
			{flush: true, adds: "10.0.0.0/8@2h0m0s"},
			{ban: "10.2.0.0/16", d: time.Hour},
			{flush: true},
			{unban: "10.0.0.0/8", unbanOK: true},
			{flush: true, dels: "10.0.0.0/8"},
		}},
		{"a narrower prefix that outlasts its cover is shadowed, then installed", []step{
			{ban: "198.51.100.0/28", d: 10 * time.Hour},
			{flush: true, adds: "198.51.100.0/28@10h0m0s"},
			{ban: "198.51.100.0/25", d: time.Minute},
			{flush: true, dels: "198.51.100.0/28", adds: "198.51.100.0/25@1m0s"},
			{ban: "198.51.100.64/27", d: 5 * time.Hour},
			{flush: true},
			// the cover expires: the next transaction installs what it shadowed, with its time left
			{flush: true, at: time.Minute + time.Second, dels: "198.51.100.0/25",
				adds: "198.51.100.0/28@9h58m59s 198.51.100.64/27@4h58m59s"},
			{unban: "198.51.100.64/27", unbanOK: true},
			{flush: true, at: time.Minute + time.Second, dels: "198.51.100.64/27"},
		}},
		{"unbanning the cover installs what it shadowed", []step{
			{ban: "2001:db8:1::/64", d: 10 * time.Hour},
			{ban: "2001:db8::/32", d: time.Hour},
			{flush: true, adds: "2001:db8::/32@1h0m0s"},
			{unban: "2001:db8::/32", unbanOK: true},
			{flush: true, dels: "2001:db8::/32", adds: "2001:db8:1::/64@10h0m0s"},
		}},
		{"a shadowed prefix can be unbanned", []step{
			{ban: "10.0.0.0/8", d: time.Hour},
			{ban: "10.2.0.0/16", d: 2 * time.Hour},
			{flush: true, adds: "10.0.0.0/8@1h0m0s"},
			{unban: "10.2.0.0/16", unbanOK: true},
			{unban: "10.0.0.0/8", unbanOK: true},
			{flush: true, dels: "10.0.0.0/8"},
		}},
		{"expired prefix does not cover", []step{
			{ban: "10.0.0.0/8", d: time.Minute},
			{flush: true, adds: "10.0.0.0/8@1m0s"},
			{ban: "10.2.0.0/16", d: time.Hour, at: 2 * time.Minute},
			{flush: true, at: 2 * time.Minute, dels: "10.0.0.0/8", adds: "10.2.0.0/16@1h0m0s"},
		}},
		{"unban", []step{
			{ban: "192.0.2.7", d: time.Hour},
			{unban: "192.0.2.7", unbanOK: true},
			{flush: true}, // never reached the kernel
			{unban: "192.0.2.7", unbanOK: false},
			{ban: "192.0.2.8", d: time.Hour},
			{flush: true, adds: "192.0.2.8/32@1h0m0s"},
			{unban: "192.0.2.8", unbanOK: true},
			{flush: true, dels: "192.0.2.8/32"},
		}},
		{"IPv4-mapped is IPv4", []step{
			{ban: "::ffff:192.0.2.7", d: time.Hour},
			{flush: true, adds: "192.0.2.7/32@1h0m0s"},
			{unban: "192.0.2.7", unbanOK: true},
		}},
		{"timeouts round up to seconds", []step{
			{ban: "192.0.2.7", d: 10 * time.Minute},
			{flush: true, at: 4 * time.Millisecond, adds: "192.0.2.7/32@10m0s"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirror()
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch {
				case s.ban != "":
					p, _ := normalize(pfx(s.ban))
					m.ban(p, now.Add(s.d), now)
				case s.unban != "":
					p, _ := normalize(pfx(s.unban))
					if ok := m.unban(p, now); ok != s.unbanOK {
						t.Errorf("step %d: unban(%s) = %v, want %v", i, s.unban, ok, s.unbanOK)
					}
				case s.flush:
					dels, adds := m.pending(now)
					if got := changesString(dels); got != s.dels {
						t.Errorf("step %d: deletions %q, want %q", i, got, s.dels)
					}
					if got := changesString(adds); got != s.adds {
						t.Errorf("step %d: additions %q, want %q", i, got, s.adds)
					}
					m.committed()
				}
			}
		})
	}
}

func TestMirrorResync(t *testing.T) {
	m := newMirror()
	m.ban(pfx("192.0.2.7"), t0.Add(time.Hour), t0)
	m.ban(pfx("192.0.2.8"), t0.Add(time.Hour), t0)
	m.pending(t0)
	m.committed()
	// The kernel lost 192.0.2.7 and has a stranger.
	m.installed([]Element{{Prefix: pfx("192.0.2.8"), Expires: t0.Add(time.Hour)}, {Prefix: pfx("203.0.113.1"), Expires: t0.Add(time.Hour)}})
	dels, adds := m.pending(t0)
	if got := changesString(dels); got != "203.0.113.1/32" {
		t.Errorf("deletions %q", got)
	}
	if got := changesString(adds); got != "192.0.2.7/32@1h0m0s" {
		t.Errorf("additions %q", got)
	}
}

func TestIntervalElements(t *testing.T) {
	tests := []struct {
		prefix string
		keys   string
	}{
		{"192.0.2.7/32", "c0000207 c0000208/end"},
		{"10.0.0.0/8", "0a000000 0b000000/end"},
		{"255.255.255.255/32", "ffffffff"},
		{"2001:db8::/64", "20010db8000000000000000000000000 20010db8000000010000000000000000/end"},
	}
	for _, tc := range tests {
		var got []string
		for _, e := range intervalElements(nil, netip.MustParsePrefix(tc.prefix), time.Hour) {
			s := ""
			for _, b := range e.Key {
				s += string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
			}
			if e.IntervalEnd {
				s += "/end"
				if e.Timeout != 0 {
					t.Errorf("%s: end element has a timeout", tc.prefix)
				}
			}
			got = append(got, s)
		}
		if strings.Join(got, " ") != tc.keys {
			t.Errorf("%s: %v, want %s", tc.prefix, got, tc.keys)
		}
	}
}

func TestFromKernel(t *testing.T) {
	el := func(a string, end bool, left time.Duration) nftables.SetElement {
		e := nftables.SetElement{Key: netip.MustParseAddr(a).AsSlice(), IntervalEnd: end}
		if !end {
			e.Timeout, e.Expires = time.Hour, left
		}
		return e
	}
	// Dump order is the kernel's (descending), with nft's leading 0.0.0.0 end marker.
	elems := []nftables.SetElement{
		el("255.255.255.255", false, time.Minute),
		el("192.0.2.9", true, 0), el("192.0.2.8", false, 2*time.Minute),
		el("192.0.2.8", true, 0), el("192.0.2.7", false, 3*time.Minute),
		el("10.0.0.5", true, 0), el("10.0.0.1", false, 4*time.Minute), // a range: 10.0.0.1-10.0.0.4
		el("0.0.0.0", true, 0),
	}
	got := fromKernel(elems, false, t0)
	want := []string{"10.0.0.1/32@4m0s", "10.0.0.2/31@4m0s", "10.0.0.4/32@4m0s", "192.0.2.7/32@3m0s", "192.0.2.8/32@2m0s", "255.255.255.255/32@1m0s"}
	var gs []string
	for _, e := range got {
		gs = append(gs, e.Prefix.String()+"@"+e.Expires.Sub(t0).String())
	}
	if strings.Join(gs, " ") != strings.Join(want, " ") {
		t.Errorf("fromKernel = %v, want %v", gs, want)
	}
}

func TestPortElements(t *testing.T) {
	got := portElements([]PortRange{{443, 443}, {80, 80}, {81, 90}, {85, 100}, {65000, 65535}})
	var s []string
	for _, e := range got {
		p := int(e.Key[0])<<8 | int(e.Key[1])
		if e.IntervalEnd {
			s = append(s, "end"+strconv.Itoa(p))
		} else {
			s = append(s, strconv.Itoa(p))
		}
	}
	if want := "80 end101 443 end444 65000"; strings.Join(s, " ") != want {
		t.Errorf("portElements = %v, want %s", s, want)
	}
}

func TestValidate(t *testing.T) {
	for _, j := range []JailRules{
		{Name: ""},
		{Name: "a b"},
		{Name: "x", Protocol: "icmp"},
		{Name: "x", BlockType: "tarpit"},
		{Name: "x", Ports: []PortRange{{10, 5}}},
		{Name: "x", Hooks: []string{"output"}},
	} {
		if _, err := j.validate(); err == nil {
			t.Errorf("%+v: no error", j)
		}
	}
	j, err := JailRules{Name: "sshd"}.validate()
	if err != nil || j.BlockType != "reject" || strings.Join(j.Hooks, ",") != "input" {
		t.Errorf("defaults: %+v, %v", j, err)
	}
}

func TestNone(t *testing.T) {
	b := NewNone()
	if err := b.Setup([]JailRules{sshd, {Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, b, "sshd", "192.0.2.7", time.Hour)
	mustBan(t, b, "sshd", "2001:db8::/64", time.Hour)
	mustBan(t, b, "sshd", "2001:db8::5", 2*time.Hour) // inside, with an element of its own
	mustFlush(t, b)
	if got := strings.Join(prefixes(elementsOf(t, b, "sshd")), " "); got != "192.0.2.7/32 2001:db8::/64 2001:db8::5/128" {
		t.Errorf("Elements = %s", got)
	}
	if err := b.Unban("sshd", pfx("2001:db8::5")); err != nil {
		t.Errorf("Unban inside a prefix: %v", err)
	}
	if err := b.Unban("sshd", pfx("2001:db8::5")); !errors.Is(err, ErrNotBanned) {
		t.Errorf("Unban again: %v", err)
	}
	if err := b.Unban("sshd", pfx("192.0.2.7")); err != nil {
		t.Errorf("Unban: %v", err)
	}
	if err := b.Ban("nope", pfx("192.0.2.7"), time.Hour); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("Ban in unknown jail: %v", err)
	}
	if err := b.Ban("sshd", netip.Prefix{}, time.Hour); !errors.Is(err, ErrInvalidPrefix) {
		t.Errorf("Ban of an invalid prefix: %v", err)
	}
	// Reload keeps the bans of remaining jails.
	if err := b.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(prefixes(elementsOf(t, b, "sshd")), " "); got != "2001:db8::/64" {
		t.Errorf("after reload: %s", got)
	}
}

// TestMirrorPrune: prune forgets what expired more than grace ago, by the expiry each prefix has now
// (an extension keeps it, an unban and re-ban keeps the new one), looking at most at limit entries.
func TestMirrorPrune(t *testing.T) {
	m := newMirror()
	ban := func(p string, d time.Duration) { m.ban(pfx(p), t0.Add(d), t0) }
	ban("192.0.2.1", time.Minute)
	ban("192.0.2.1", 2*time.Hour) // extended
	ban("192.0.2.2", time.Hour)
	ban("192.0.2.3", time.Minute)
	m.unban(pfx("192.0.2.3"), t0)
	ban("192.0.2.3", 3*time.Hour) // unbanned, banned again
	ban("2001:db8::/64", 10*time.Minute)
	ban("2001:db8:1::/64", 20*time.Minute)
	m.committed()
	wanted := func() string {
		var out []string
		for _, e := range m.elements(t0) {
			out = append(out, e.Prefix.String())
		}
		return strings.Join(out, " ")
	}
	m.prune(t0.Add(90*time.Minute), 10*time.Second, 3) // the two stale entries, then the /64
	if got, want := wanted(), "192.0.2.1/32 192.0.2.2/32 192.0.2.3/32 2001:db8:1::/64"; got != want {
		t.Errorf("after prune with limit 3: %s, want %s", got, want)
	}
	m.prune(t0.Add(90*time.Minute), 10*time.Second, -1)
	if got, want := wanted(), "192.0.2.1/32 192.0.2.3/32"; got != want {
		t.Errorf("after prune: %s, want %s", got, want)
	}
	if m.bits4[32] != 2 || m.bits6[64] != 0 {
		t.Errorf("prefix length counts %d (/32), %d (/64), want 2, 0", m.bits4[32], m.bits6[64])
	}
	// Within the grace the kernel may still hold it: kept.
	m.prune(t0.Add(2*time.Hour+5*time.Second), 10*time.Second, -1)
	if got, want := wanted(), "192.0.2.1/32 192.0.2.3/32"; got != want {
		t.Errorf("within the grace: %s, want %s", got, want)
	}
}
