package jails_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/jails"
)

// TestOverlappingBansStayInForce: every ban the engine lists is in force in the firewall for as long
// as it lasts, also when a shorter, wider ban overlapped it for a while. A 10-hour ban of an address
// and of a /28, then a one-minute ban of the /25 around them: once the /25 is unbanned, both are still
// in the firewall's sets, and an unban of the address lifts it.
func TestOverlappingBansStayInForce(t *testing.T) {
	fw := firewall.NewNone()
	if err := fw.Setup([]firewall.JailRules{{Name: "sshd"}}); err != nil {
		t.Fatal(err)
	}
	e := jails.NewEngine(fw, quiet{}, time.Now)
	f, _ := jails.SSHD(jails.ModeNormal)
	if err := e.SetJail("sshd", f, jails.Settings{BanTime: time.Hour, FindTime: time.Minute, MaxRetry: 3, IPv6Prefix: 128}); err != nil {
		t.Fatal(err)
	}
	manual := events.Origin{Kind: events.OriginManual}
	for _, b := range []struct {
		addr string
		d    time.Duration
	}{{"198.51.100.77", 10 * time.Hour}, {"198.51.100.16/28", 10 * time.Hour}, {"198.51.100.0/25", time.Minute}, {"198.51.100.99", 5 * time.Hour}} {
		got, err := e.Ban("sshd", b.addr, b.d, manual)
		if err != nil {
			t.Fatalf("ban %s: %v", b.addr, err)
		}
		if got.Expires.Sub(got.BannedAt) != b.d {
			t.Errorf("ban %s: got the ban of %s until %v", b.addr, got.Prefix, got.Expires)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := elements(t, fw), "198.51.100.0/25 198.51.100.77/32 198.51.100.99/32"; got != want {
		t.Errorf("with the /25: %s, want %s", got, want)
	}
	if _, err := e.Unban("sshd", "198.51.100.0/25", manual); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := elements(t, fw), "198.51.100.16/28 198.51.100.77/32 198.51.100.99/32"; got != want {
		t.Errorf("after the /25's unban: %s, want %s", got, want)
	}
	var listed []string
	for _, b := range e.Bans("sshd") {
		listed = append(listed, b.Prefix.String())
	}
	if got, want := strings.Join(listed, " "), "198.51.100.16/28 198.51.100.77/32 198.51.100.99/32"; got != want {
		t.Errorf("engine lists %s, want %s", got, want)
	}
	if _, err := e.Unban("sshd", "198.51.100.77", manual); err != nil {
		t.Errorf("unban of the address: %v", err)
	}
}

// quiet is an Events that listens to nothing.
type quiet struct{}

func (quiet) Banned(jails.Ban)                             {}
func (quiet) Unbanned(jails.Ban, string, events.Origin)    {}
func (quiet) Failed(string, netip.Addr, time.Time, string) {}

func elements(t *testing.T, fw *firewall.None) string {
	t.Helper()
	els, err := fw.Elements("sshd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, el := range els {
		out = append(out, el.Prefix.String())
	}
	return strings.Join(out, " ")
}
