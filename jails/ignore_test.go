package jails

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// lockoutSettings ignore 127.0.0.0/8, 10.0.0.0/8 and ::1, and the harness's own addresses
// (203.0.113.1, 2001:db8:ffff::1).
func lockoutSettings() Settings {
	s := settings()
	s.IgnoreIP = append(s.IgnoreIP, netip.MustParsePrefix("::1/128"))
	return s
}

// TestManualBanNoLockout: a manual ban of a prefix that holds an ignored or own address, of such an
// address itself, or of a prefix with host bits set, is refused with a message naming why, and
// nothing reaches the firewall; what is banned is the canonical prefix.
func TestManualBanNoLockout(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		msg     string // "" = banned
		ignored bool
		want    string // the banned prefix
	}{
		{addr: "0.0.0.0/0", msg: "0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores", ignored: true},
		{addr: "::/0", msg: "::/0 contains ::1, which jail sshd ignores", ignored: true},
		{addr: "::ffff:0.0.0.0/96", msg: "0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores", ignored: true},
		{addr: "120.0.0.0/5", msg: "120.0.0.0/5 contains 127.0.0.0/8, which jail sshd ignores", ignored: true},
		{addr: "203.0.113.0/24", msg: "203.0.113.0/24 contains 203.0.113.1, an address of this host, which jail sshd ignores (ignoreself)", ignored: true},
		{addr: "2001:db8::/32", msg: "2001:db8::/32 contains 2001:db8:ffff::1, an address of this host, which jail sshd ignores (ignoreself)", ignored: true},
		{addr: "203.0.113.1", msg: "203.0.113.1 is an address of this host, which jail sshd ignores (ignoreself)", ignored: true},
		{addr: "127.0.0.1", msg: "127.0.0.1 is inside 127.0.0.0/8, which jail sshd ignores", ignored: true},
		{addr: "::ffff:127.0.0.1", msg: "127.0.0.1 is inside 127.0.0.0/8, which jail sshd ignores", ignored: true},
		{addr: "127.1.0.0/16", msg: "127.1.0.0/16 is inside 127.0.0.0/8, which jail sshd ignores", ignored: true},
		{addr: "10.0.0.0/8", msg: "10.0.0.0/8 is in jail sshd's ignoreip", ignored: true},
		{addr: "127.0.0.0/7", msg: "127.0.0.0/7 has host bits set: did you mean 126.0.0.0/7, or 127.0.0.0/8?"},
		{addr: "192.0.2.7/24", msg: "192.0.2.7/24 has host bits set: did you mean 192.0.2.0/24, or 192.0.2.7?"},
		{addr: "2001:db8:1::1/64", msg: "2001:db8:1::1/64 has host bits set: did you mean 2001:db8:1::/64, or 2001:db8:1::1?"},
		{addr: "::ffff:1.2.3.4", want: "1.2.3.4/32"},
		{addr: "::ffff:198.51.100.0/120", want: "198.51.100.0/24"},
		{addr: "192.0.2.0/24", want: "192.0.2.0/24"},
		{addr: "2001:db8:ffff::2", want: "2001:db8:ffff::2/128"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			h := newHarness(t, lockoutSettings())
			b, err := h.e.Ban("sshd", tc.addr, time.Hour, manual)
			if tc.msg == "" {
				if err != nil || b.Prefix.String() != tc.want {
					t.Fatalf("Ban(%s) = %v, %v; want %s", tc.addr, b.Prefix, err, tc.want)
				}
				if len(h.fw.calls) != 1 || !strings.HasPrefix(h.fw.calls[0], "ban sshd "+tc.want+" ") {
					t.Errorf("firewall calls %v", h.fw.calls)
				}
				return
			}
			if err == nil || err.Error() != tc.msg {
				t.Fatalf("Ban(%s) error = %v, want %q", tc.addr, err, tc.msg)
			}
			if !errors.Is(err, ErrInvalidAddress) || errors.Is(err, ErrIgnored) != tc.ignored {
				t.Errorf("Ban(%s) error %v: Is(ErrInvalidAddress) %v, Is(ErrIgnored) %v, want true, %v", tc.addr, err,
					errors.Is(err, ErrInvalidAddress), errors.Is(err, ErrIgnored), tc.ignored)
			}
			if len(h.fw.calls) != 0 || len(h.ev.log) != 0 {
				t.Errorf("a refused ban reached the firewall %v or the events %v", h.fw.calls, h.ev.log)
			}
		})
	}
}

// TestIPv6PrefixFallback: with ipv6_prefix = 64, an offender whose /64 holds an ignored or own address
// is counted and banned as its single address, never as the /64, and the notice hears of it once per
// prefix; other /64s are banned whole.
func TestIPv6PrefixFallback(t *testing.T) {
	s := lockoutSettings()
	s.IPv6Prefix = 64
	s.IgnoreIP = append(s.IgnoreIP, netip.MustParsePrefix("2001:db8:aaaa:1::/80"))
	h := newHarness(t, s)
	var notices []string
	h.e.notice = func(jail, msg string) { notices = append(notices, jail+": "+msg) }

	// Two offenders in the host's own /64: each is its own window and its own ban.
	h.fail("2001:db8:ffff::a", 0)
	h.fail("2001:db8:ffff::b", time.Second)
	h.fail("2001:db8:ffff::a", 2*time.Second)
	if n := len(h.e.Bans("sshd")); n != 0 {
		t.Fatalf("two failures of each of two addresses banned %d", n)
	}
	h.fail("2001:db8:ffff::a", 3*time.Second)
	h.fail("2001:db8:ffff::b", 4*time.Second)
	h.fail("2001:db8:ffff::b", 5*time.Second)
	// One in a /64 that holds an ignored /80, one in a /64 that holds nothing ignored.
	for i := range 3 {
		h.fail("2001:db8:aaaa:1:1::1", time.Duration(10+i)*time.Second)
		h.fail("2001:db8:5::1", time.Duration(10+i)*time.Second)
	}
	var got []string
	for _, b := range h.e.Bans("sshd") {
		got = append(got, b.Prefix.String())
	}
	want := "2001:db8:5::/64 2001:db8:aaaa:1:1::1/128 2001:db8:ffff::a/128 2001:db8:ffff::b/128"
	if strings.Join(got, " ") != want {
		t.Errorf("bans %v, want %s", got, want)
	}
	for _, c := range h.fw.calls {
		if strings.Contains(c, "2001:db8:ffff::/64") || strings.Contains(c, "2001:db8:aaaa:1::/64") {
			t.Errorf("a /64 holding an ignored address reached the firewall: %s", c)
		}
	}

	// A manual ban of a bare address there bans the address; of the /64, is refused.
	if b, err := h.e.Ban("sshd", "2001:db8:ffff::c", 0, manual); err != nil || b.Prefix.String() != "2001:db8:ffff::c/128" {
		t.Errorf("manual ban of an address in the host's /64 = %v, %v", b.Prefix, err)
	}
	if _, err := h.e.Ban("sshd", "2001:db8:ffff::/64", 0, manual); !errors.Is(err, ErrIgnored) {
		t.Errorf("manual ban of the host's /64: %v, want ErrIgnored", err)
	}
	// Unban finds the single address's ban.
	if b, err := h.e.Unban("sshd", "2001:db8:ffff::a", manual); err != nil || b.Prefix.String() != "2001:db8:ffff::a/128" {
		t.Errorf("Unban = %v, %v", b.Prefix, err)
	}

	wantNotices := []string{
		"sshd: 2001:db8:ffff::/64 holds 2001:db8:ffff::1, an address of this host, which jail sshd ignores (ignoreself): its offenders are banned address by address (2001:db8:ffff::a first), never as the /64 of ipv6_prefix",
		"sshd: 2001:db8:aaaa:1::/64 holds 2001:db8:aaaa:1::/80, which jail sshd ignores: its offenders are banned address by address (2001:db8:aaaa:1:1::1 first), never as the /64 of ipv6_prefix",
	}
	if strings.Join(notices, "\n") != strings.Join(wantNotices, "\n") {
		t.Errorf("notices:\n%s\nwant:\n%s", strings.Join(notices, "\n"), strings.Join(wantNotices, "\n"))
	}
}
