package jails

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// shipped are the shipped configuration's settings of the sshd jail (packaging/gaoler.toml).
func shipped() Settings {
	return Settings{BanTime: 10 * time.Minute, FindTime: 10 * time.Minute, MaxRetry: 5, IPv6Prefix: 128,
		IgnoreSelf: true, IPv6SubnetLimit: DefaultIPv6SubnetLimit,
		IgnoreIP: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
}

// TestFloodIsNotAnEvasion floods a jail with the shipped settings with 200,000 distinct IPv4
// offenders, each failing maxretry times within findtime, interleaved (every address fails once,
// then every address a second time, ...): every one of them is banned, none lost to eviction.
func TestFloodIsNotAnEvasion(t *testing.T) {
	const n, rounds = 200_000, 5
	h := newHarness(t, shipped())
	h.e.ev = nopEvents{}
	addr := func(i int) string {
		return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}).String()
	}
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = failMsg(addr(i))
	}
	// 1,000,000 failures in 5 minutes: well within findtime.
	step := 5 * time.Minute / (n * rounds)
	for r := range rounds {
		for i, m := range msgs {
			at := t0.Add(time.Duration(r*n+i) * step)
			h.clock.t = at
			h.e.Handle("sshd", events.Entry{Time: at, Message: m})
		}
		if near, _ := h.e.NearBan(); r == rounds-2 && !near {
			t.Errorf("after %d rounds no window is one failure from its ban", r+1)
		}
	}
	st, _ := h.e.Stats("sshd")
	if st.CurrentlyBanned != n {
		t.Errorf("%d of %d offenders banned", st.CurrentlyBanned, n)
	}
	if got := h.e.jails["sshd"].windows.len(); got != 0 {
		t.Errorf("%d windows left after every offender was banned", got)
	}
	if near, _ := h.e.NearBan(); near {
		t.Error("NearBan with every offender banned")
	}
}

// TestIPv6RotationBansItsSubnet: an attacker rotating through the addresses of its /64 with
// ipv6_prefix = 128 gets the /64 banned once more than IPv6SubnetLimit of them failed, and neither
// escapes nor pushes other offenders' windows out.
func TestIPv6RotationBansItsSubnet(t *testing.T) {
	s := shipped()
	s.MaxTracked = 1000
	h := newHarness(t, s)
	for i := range 4 { // another offender, one failure from its ban
		h.fail("192.0.2.9", time.Duration(i)*time.Second)
	}
	off := 10 * time.Second
	var banned bool
	for i := 1; i <= 100_001; i++ {
		off += time.Millisecond
		h.fail(fmt.Sprintf("2001:db8:bad:1::%x", i), off)
		if h.fw.elems["sshd 2001:db8:bad:1::/64"].After(h.clock.t) {
			banned = true
			if i != s.IPv6SubnetLimit+1 {
				t.Errorf("the /64 was banned at its address #%d, want #%d", i, s.IPv6SubnetLimit+1)
			}
			break
		}
	}
	if !banned {
		t.Fatal("the rotating /64 was never banned")
	}
	// Its further addresses are inside the ban: they fill no window.
	windows := h.e.jails["sshd"].windows.len()
	for i := range 1000 {
		h.fail(fmt.Sprintf("2001:db8:bad:1:%x::1", i+1), off+time.Second)
	}
	if got := h.e.jails["sshd"].windows.len(); got != windows {
		t.Errorf("failures inside the banned /64 made %d windows", got-windows)
	}
	h.fail("192.0.2.9", off+2*time.Second)
	if _, ok := h.fw.elems["sshd 192.0.2.9/32"]; !ok {
		t.Error("the other offender's window was lost to the rotation")
	}
	// Another /64 with up to the limit of failing addresses is not banned.
	for i := range s.IPv6SubnetLimit {
		h.fail(fmt.Sprintf("2001:db8:0:2::%x", i+1), off+3*time.Second)
	}
	if _, ok := h.fw.elems["sshd 2001:db8:0:2::/64"]; ok {
		t.Error("a /64 with no more than the limit of failing addresses was banned")
	}
	// Addresses spread over findtime are not counted together.
	for i := range 2 * s.IPv6SubnetLimit {
		h.fail(fmt.Sprintf("2001:db8:0:3::%x", i+1), off+time.Duration(i)*(s.FindTime/time.Duration(s.IPv6SubnetLimit)+time.Second))
	}
	if _, ok := h.fw.elems["sshd 2001:db8:0:3::/64"]; ok {
		t.Error("a /64 whose addresses failed further apart than findtime was banned")
	}
}

// TestIPv6RotationNeverLocksOut: a /64 holding an address the jail ignores (here the host's own) is
// never banned; past the limit each new failing address of it is banned alone.
func TestIPv6RotationNeverLocksOut(t *testing.T) {
	s := shipped()
	h := newHarness(t, s) // selfAddrs holds 2001:db8:ffff::1
	for i := 1; i <= s.IPv6SubnetLimit+5; i++ {
		h.fail(fmt.Sprintf("2001:db8:ffff::%x", i+1), time.Duration(i)*time.Second)
	}
	if _, ok := h.fw.elems["sshd 2001:db8:ffff::/64"]; ok {
		t.Fatal("banned the /64 that holds the host's own address")
	}
	for i := 1; i <= s.IPv6SubnetLimit+5; i++ {
		p := fmt.Sprintf("sshd 2001:db8:ffff::%x/128", i+1)
		if _, ok := h.fw.elems[p]; ok != (i > s.IPv6SubnetLimit) {
			t.Errorf("address #%d: banned %v, want %v", i, ok, i > s.IPv6SubnetLimit)
		}
	}
	h.fail("2001:db8:ffff::1", time.Minute)
	if len(h.fw.elems) != 5 {
		t.Errorf("elements %v", h.fw.live())
	}
}

// TestSubnetCountSurvivesRestore: the distinct addresses counted per /64 are in the checkpoint.
func TestSubnetCountSurvivesRestore(t *testing.T) {
	s := shipped()
	h := newHarness(t, s)
	for i := range s.IPv6SubnetLimit {
		h.fail(fmt.Sprintf("2001:db8:5::%x", i+1), time.Duration(i)*time.Second)
	}
	h2 := restored(t, h, s)
	h2.fail("2001:db8:5::ffff", time.Minute)
	if _, ok := h2.fw.elems["sshd 2001:db8:5::/64"]; !ok {
		t.Errorf("after a restore the /64 was not banned at its address #%d: %v", s.IPv6SubnetLimit+1, h2.fw.live())
	}
	// Unbanning the /64 forgives what was counted.
	if _, err := h2.e.Unban("sshd", "2001:db8:5::/64", manual); err != nil {
		t.Fatal(err)
	}
	h2.fail("2001:db8:5::fffe", time.Minute+time.Second)
	if _, ok := h2.fw.elems["sshd 2001:db8:5::/64"]; ok {
		t.Error("banned the forgiven /64 again at its next new address")
	}
}

// TestNearBan follows the engine's "one failure from a ban" through a window's life.
func TestNearBan(t *testing.T) {
	s := settings() // maxretry 3
	h := newHarness(t, s)
	near := func() bool { n, _ := h.e.NearBan(); return n }
	if near() {
		t.Fatal("NearBan with no failure")
	}
	h.fail("192.0.2.1", 0)
	if near() {
		t.Error("NearBan after 1 of 3 failures")
	}
	h.fail("192.0.2.1", time.Second)
	if !near() {
		t.Error("not NearBan after 2 of 3 failures")
	}
	h.fail("192.0.2.1", 2*time.Second)
	if near() {
		t.Error("NearBan after the ban")
	}
	h.fail("192.0.2.2", 3*time.Second)
	h.fail("192.0.2.2", 4*time.Second)
	h.clock.t = t0.Add(time.Hour)
	h.e.Expire(h.clock.t)
	if near() {
		t.Error("NearBan after the window's failures left findtime")
	}
	h.fail("192.0.2.3", time.Hour)
	h.fail("192.0.2.3", time.Hour+time.Second)
	if _, err := h.e.Ban("sshd", "192.0.2.3", 0, manual); err != nil {
		t.Fatal(err)
	}
	if near() {
		t.Error("NearBan after a manual ban of the only near address")
	}
	// Raising maxretry makes the full windows less full.
	h.fail("192.0.2.4", time.Hour+2*time.Second)
	h.fail("192.0.2.4", time.Hour+3*time.Second)
	s.MaxRetry = 5
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	if near() {
		t.Error("NearBan at 2 of 5 failures")
	}
	s.MaxRetry = 1
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	if n, always := h.e.NearBan(); !n || !always {
		t.Error("maxretry 1 is always one failure from a ban")
	}
}

// TestIPv6RotationSparesTrusted: a /64 holding an address trusted after its login is not banned
// whole either.
func TestIPv6RotationSparesTrusted(t *testing.T) {
	s := shipped()
	s.Trust = TrustSettings{After: time.Hour}
	h := newHarness(t, s)
	h.e.Login("sshd", LoginEvent{Addr: netip.MustParseAddr("2001:db8:7::1"), Method: "publickey", At: t0})
	for i := 1; i <= s.IPv6SubnetLimit+1; i++ {
		h.fail(fmt.Sprintf("2001:db8:7::%x", i+1), time.Duration(i)*time.Second)
	}
	if _, ok := h.fw.elems["sshd 2001:db8:7::/64"]; ok {
		t.Fatal("banned the /64 of an address trusted after its login")
	}
	if _, ok := h.fw.elems[fmt.Sprintf("sshd 2001:db8:7::%x/128", s.IPv6SubnetLimit+2)]; !ok {
		t.Errorf("the address past the limit was not banned alone: %v", h.fw.live())
	}
}
