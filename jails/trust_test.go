package jails

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// trustLog records TrustEvents.
type trustLog struct{ log []string }

func (l *trustLog) Trusted(t Trust, extended bool) {
	l.log = append(l.log, fmt.Sprintf("trusted %s %s until %s extended=%v by %s/%s", t.Jail, t.Addr, t.Until.Format(time.DateTime), extended, t.User, t.Method))
}

func (l *trustLog) Untrusted(t Trust, reason string) {
	l.log = append(l.log, fmt.Sprintf("untrusted %s %s %s", t.Jail, t.Addr, reason))
}

func trustSettings() Settings {
	s := settings()
	s.Trust = TrustSettings{After: time.Hour, Methods: []string{"publickey"}}
	return s
}

// newTrustHarness is newHarness with trust events recorded and a second jail, "web", using a
// config-defined filter.
func newTrustHarness(t *testing.T, s Settings) (*harness, *trustLog) {
	t.Helper()
	h := &harness{clock: &fakeClock{t: t0}, ev: &fakeEvents{}}
	h.fw = newFakeFirewall(h.clock)
	tl := &trustLog{}
	h.e = NewEngine(h.fw, h.ev, h.clock.now, WithSelfAddrs(func() ([]netip.Prefix, error) { return selfAddrs, nil }), WithTrustEvents(tl))
	f, _ := SSHD(ModeNormal)
	if err := h.e.SetJail("sshd", f, s); err != nil {
		t.Fatal(err)
	}
	web, err := NewFilter("web", []string{`bad login from <HOST>`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.e.SetJail("web", web, s); err != nil {
		t.Fatal(err)
	}
	return h, tl
}

func keyLogin(addr string, off time.Duration) LoginEvent {
	return LoginEvent{Addr: netip.MustParseAddr(addr), User: "admin", Method: "publickey", At: t0.Add(off)}
}

func (h *harness) failN(addr string, from time.Duration, n int) {
	for i := 0; i < n; i++ {
		h.fail(addr, from+time.Duration(i)*time.Second)
	}
}

func (h *harness) banned(jail, addr string) bool {
	for _, b := range h.e.Bans(jail) {
		if b.Prefix.Contains(netip.MustParseAddr(addr)) {
			return true
		}
	}
	return false
}

func TestTrustAfterLoginSparesFailures(t *testing.T) {
	h, tl := newTrustHarness(t, trustSettings())
	h.fail("192.0.2.10", 0)
	h.fail("192.0.2.10", time.Second)
	if got := h.e.Login("sshd", keyLogin("192.0.2.10", 2*time.Second)); len(got) != 1 {
		t.Fatalf("Login trusted %v, want one jail", got)
	}
	if st, _ := h.e.Stats("sshd"); st.CurrentlyFailed != 0 {
		t.Fatalf("the login left %d failure windows, want the window cleared", st.CurrentlyFailed)
	}
	h.failN("192.0.2.10", 3*time.Second, 10)
	if h.banned("sshd", "192.0.2.10") {
		t.Fatal("a trusted address was banned by its failures")
	}
	h.failN("192.0.2.20", 3*time.Second, 3)
	if !h.banned("sshd", "192.0.2.20") {
		t.Fatal("an address with no login was not banned")
	}
	if tr, ok := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10")); !ok || tr.User != "admin" || tr.Method != "publickey" || !tr.Until.Equal(t0.Add(time.Hour+2*time.Second)) {
		t.Fatalf("TrustOf = %+v, %v", tr, ok)
	}
	if n := len(h.e.Trusted("sshd")); n != 1 {
		t.Fatalf("Trusted lists %d, want 1", n)
	}
	if !strings.HasPrefix(tl.log[0], "trusted sshd 192.0.2.10 until") {
		t.Fatalf("trust events %v", tl.log)
	}
}

func TestTrustExpiresAndRepeatLoginsExtend(t *testing.T) {
	h, tl := newTrustHarness(t, trustSettings())
	h.e.Login("sshd", keyLogin("192.0.2.10", 0))
	h.clock.t = t0.Add(50 * time.Minute)
	h.e.Login("sshd", keyLogin("192.0.2.10", 50*time.Minute)) // extends to 1h50m
	h.failN("192.0.2.10", 70*time.Minute, 5)
	if h.banned("sshd", "192.0.2.10") {
		t.Fatal("banned while the extended trust runs")
	}
	tr, _ := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10"))
	if !tr.Until.Equal(t0.Add(110*time.Minute)) || tr.Logins != 2 {
		t.Fatalf("after a repeat login: %+v", tr)
	}
	h.clock.t = t0.Add(111 * time.Minute)
	h.e.Expire(h.clock.t)
	if _, ok := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10")); ok {
		t.Fatal("trust outlived its end")
	}
	if last := tl.log[len(tl.log)-1]; last != "untrusted sshd 192.0.2.10 expired" {
		t.Fatalf("last trust event %q", last)
	}
	h.failN("192.0.2.10", 112*time.Minute, 3)
	if !h.banned("sshd", "192.0.2.10") {
		t.Fatal("failures after the trust ended did not ban")
	}
}

func TestTrustMethods(t *testing.T) {
	h, _ := newTrustHarness(t, trustSettings())
	pw := LoginEvent{Addr: netip.MustParseAddr("192.0.2.30"), User: "u", Method: "password", At: t0}
	if got := h.e.Login("sshd", pw); len(got) != 0 {
		t.Fatalf("a password login earned trust with trust_methods = [publickey]: %v", got)
	}
	kbd := LoginEvent{Addr: netip.MustParseAddr("192.0.2.31"), User: "u", Method: "keyboard-interactive/pam", At: t0}
	s := trustSettings()
	s.Trust.Methods = []string{"keyboard-interactive"}
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	if got := h.e.Login("sshd", kbd); len(got) != 1 {
		t.Fatalf("keyboard-interactive/pam not taken as keyboard-interactive: %v", got)
	}
}

func TestTrustPerJailUnlessOverall(t *testing.T) {
	h, _ := newTrustHarness(t, trustSettings())
	h.e.Login("sshd", keyLogin("192.0.2.10", 0))
	if _, ok := h.e.TrustOf("web", netip.MustParseAddr("192.0.2.10")); ok {
		t.Fatal("a login seen by sshd trusted the address in web without trust_overalljails")
	}
	for i := 0; i < 3; i++ {
		h.e.Handle("web", events.Entry{Time: t0.Add(time.Duration(i) * time.Second), Message: "bad login from 192.0.2.10"})
	}
	if !h.banned("web", "192.0.2.10") {
		t.Fatal("web did not ban an address trusted only in sshd")
	}

	s := trustSettings()
	s.Trust.OverallJails = true
	h2, _ := newTrustHarness(t, s)
	h2.e.Login("sshd", keyLogin("192.0.2.10", 0))
	if _, ok := h2.e.TrustOf("web", netip.MustParseAddr("192.0.2.10")); !ok {
		t.Fatal("trust_overalljails: web does not trust a login sshd saw")
	}
}

func TestTrustLogindSessionsGoToTheirService(t *testing.T) {
	s := trustSettings()
	s.Trust.Methods = []string{"publickey", MethodLogind}
	h, _ := newTrustHarness(t, s)
	l := LoginEvent{Addr: netip.MustParseAddr("2001:db8::10"), User: "admin", Method: MethodLogind, At: t0, Service: "sshd"}
	got := h.e.Login("", l)
	if len(got) != 1 || got[0].Jail != "sshd" {
		t.Fatalf("a logind sshd session trusted %v, want the sshd jail only", got)
	}
	h2, _ := newTrustHarness(t, trustSettings())
	if got := h2.e.Login("", l); len(got) != 0 {
		t.Fatalf("a logind session earned trust without \"logind\" in trust_methods: %v", got)
	}
}

func TestTrustIPv6AddressOnly(t *testing.T) {
	s := trustSettings()
	s.IPv6Prefix = 64
	h, _ := newTrustHarness(t, s)
	h.e.Login("sshd", keyLogin("2001:db8:1::10", 0))
	if _, ok := h.e.TrustOf("sshd", netip.MustParseAddr("2001:db8:1::11")); ok {
		t.Fatal("an IPv6 login trusted its neighbour")
	}
	h.failN("2001:db8:1::10", time.Second, 5)
	h.failN("2001:db8:1::11", 10*time.Second, 3)
	bans := h.e.Bans("sshd")
	if len(bans) != 1 || bans[0].Prefix != netip.MustParsePrefix("2001:db8:1::11/128") {
		t.Fatalf("bans %v: want the failing neighbour alone, not the /64 holding the trusted address", bans)
	}
	h.failN("2001:db8:2::1", 20*time.Second, 3)
	if !h.banned("sshd", "2001:db8:2::99") {
		t.Fatal("a /64 with no trusted address was not banned whole")
	}
}

func TestManualBanOverridesTrust(t *testing.T) {
	h, tl := newTrustHarness(t, trustSettings())
	h.e.Login("sshd", keyLogin("192.0.2.10", 0))
	if _, err := h.e.Ban("sshd", "192.0.2.10", 0, events.Origin{Kind: events.OriginPeer, Peer: "h2"}); !errors.Is(err, ErrTrusted) {
		t.Fatalf("a peer's ban of a trusted address: %v, want ErrTrusted", err)
	}
	if _, err := h.e.Ban("sshd", "192.0.2.0/24", 0, manual); err != nil {
		t.Fatal(err)
	}
	if !h.banned("sshd", "192.0.2.10") {
		t.Fatal("a manual ban of a trusted address did not ban")
	}
	if _, ok := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10")); ok {
		t.Fatal("the trust outlived the manual ban that overrides it")
	}
	if last := tl.log[len(tl.log)-1]; last != "untrusted sshd 192.0.2.10 banned" {
		t.Fatalf("last trust event %q", last)
	}
}

func TestManualTrustAndUntrust(t *testing.T) {
	h, _ := newTrustHarness(t, trustSettings())
	if _, err := h.e.Trust("sshd", "192.0.2.0/24", 0, 0); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("trust of a prefix: %v", err)
	}
	if _, err := h.e.Trust("nope", "192.0.2.1", 0, 0); !errors.Is(err, ErrNoSuchJail) {
		t.Fatalf("trust in no jail: %v", err)
	}
	tr, err := h.e.Trust("sshd", "192.0.2.40", 2*time.Hour, 1000)
	if err != nil || tr.Method != MethodManual || tr.UID != 1000 || !tr.Until.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Trust = %+v, %v", tr, err)
	}
	h.failN("192.0.2.40", 0, 5)
	if h.banned("sshd", "192.0.2.40") {
		t.Fatal("banned while trusted by hand")
	}
	if _, err := h.e.Untrust("sshd", "192.0.2.40"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Untrust("sshd", "192.0.2.40"); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("second untrust: %v", err)
	}
	h.failN("192.0.2.40", 10*time.Second, 3)
	if !h.banned("sshd", "192.0.2.40") {
		t.Fatal("failures after untrust did not ban")
	}
	s := trustSettings()
	s.Trust.After = 0
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	if _, err := h.e.Trust("sshd", "192.0.2.41", 0, 0); err == nil {
		t.Fatal("a manual trust with no duration while trust_after_login is off")
	}
	if _, err := h.e.Trust("sshd", "192.0.2.41", time.Minute, 0); err != nil {
		t.Fatalf("a manual trust with a duration while trust_after_login is off: %v", err)
	}
}

func TestTrustOffAndConfigChanges(t *testing.T) {
	s := trustSettings()
	s.Trust.After = 0
	h, tl := newTrustHarness(t, s)
	if got := h.e.Login("sshd", keyLogin("192.0.2.10", 0)); len(got) != 0 {
		t.Fatalf("trust_after_login = 0 still trusted %v", got)
	}
	s.Trust.After = time.Hour
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	h.e.Login("sshd", keyLogin("192.0.2.10", 0))
	h.e.Trust("sshd", "192.0.2.11", time.Hour, 0)
	s.Trust.After = 10 * time.Minute // shorter: the login's trust ends 10 minutes after it
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	if tr, _ := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10")); !tr.Until.Equal(t0.Add(10 * time.Minute)) {
		t.Fatalf("after trust_after_login shrank: %+v", tr)
	}
	s.Trust.Methods = []string{"password"}
	h.e.SetJail("sshd", h.e.jails["sshd"].filter, s)
	if _, ok := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10")); ok {
		t.Fatal("a key login's trust outlived trust_methods dropping publickey")
	}
	if _, ok := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.11")); !ok {
		t.Fatal("a manual trust ended with a config change")
	}
	if last := tl.log[len(tl.log)-1]; last != "untrusted sshd 192.0.2.10 config" {
		t.Fatalf("last trust event %q", last)
	}
}

func TestTrustCapDropsTheStalest(t *testing.T) {
	s := trustSettings()
	s.Trust.MaxTrusted = 3
	h, tl := newTrustHarness(t, s)
	for i := 1; i <= 5; i++ {
		h.clock.t = t0.Add(time.Duration(i) * time.Minute)
		h.e.Login("sshd", keyLogin(fmt.Sprintf("192.0.2.%d", i), time.Duration(i)*time.Minute))
	}
	got := h.e.Trusted("sshd")
	if len(got) != 3 || got[0].Addr != netip.MustParseAddr("192.0.2.3") {
		t.Fatalf("trusted after 5 logins with a cap of 3: %v", got)
	}
	if tl.log[3] != "untrusted sshd 192.0.2.1 full" {
		t.Fatalf("trust events %v", tl.log)
	}
}

func TestTrustCheckpointRoundTrip(t *testing.T) {
	s := trustSettings()
	h, _ := newTrustHarness(t, s)
	h.e.Login("sshd", keyLogin("192.0.2.10", 0))
	h.e.Login("sshd", keyLogin("2001:db8::7", 0))
	h.e.Trust("sshd", "198.51.100.9", 30*time.Minute, 1000)
	snap := h.e.Snapshot()
	fast := snap.AppendJSON(nil)
	slow, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fast, slow) {
		t.Fatalf("AppendJSON\n%s\nencoding/json\n%s", fast, slow)
	}
	var st State
	if err := json.Unmarshal(fast, &st); err != nil {
		t.Fatal(err)
	}
	h2, _ := newTrustHarness(t, s)
	h2.clock.t = h.clock.t
	if err := h2.e.Restore(st); err != nil {
		t.Fatal(err)
	}
	want, got := h.e.Trusted(""), h2.e.Trusted("")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored trust %v, want %v", got, want)
	}
	h2.failN("192.0.2.10", time.Second, 5)
	if h2.banned("sshd", "192.0.2.10") {
		t.Fatal("banned after a restore that should have kept the trust")
	}
}

func TestTrustFromSSHDAcceptedEntries(t *testing.T) {
	h, _ := newTrustHarness(t, trustSettings())
	h.e.Handle("sshd", events.Entry{Time: t0, Message: "Accepted publickey for admin from 192.0.2.10 port 50022 ssh2: ED25519 SHA256:abc"})
	h.e.Handle("sshd", events.Entry{Time: t0, Message: "Accepted password for admin from 192.0.2.11 port 50022 ssh2"})
	h.failN("192.0.2.10", time.Second, 5)
	h.failN("192.0.2.11", time.Second, 3)
	if h.banned("sshd", "192.0.2.10") {
		t.Fatal("banned after a key login")
	}
	if !h.banned("sshd", "192.0.2.11") {
		t.Fatal("a password login bought trust with trust_methods = [publickey]")
	}
	tr, ok := h.e.TrustOf("sshd", netip.MustParseAddr("192.0.2.10"))
	if !ok || tr.User != "admin" || tr.Method != "publickey" || !tr.At.Equal(t0) {
		t.Fatalf("trust %+v %v", tr, ok)
	}
}
