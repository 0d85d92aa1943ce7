package daemon

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// TestLogEventsOrigin: the journal's ban and unban entries say who made the ban (GAOLER_ORIGIN, with
// GAOLER_UID, GAOLER_PEER or GAOLER_RULE) and who lifted it by hand (GAOLER_BY_UID), as the bus's
// BannedEx and UnbannedEx do; a restored ban writes no entry.
func TestLogEventsOrigin(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p := netip.MustParsePrefix("192.0.2.7/32")
	filter := events.Origin{Kind: events.OriginFilter}
	manual := events.Origin{Kind: events.OriginManual, UID: 1000}
	peer := events.Origin{Kind: events.OriginPeer, Peer: "h1"}
	ban := func(o events.Origin, rule string) events.Event {
		return events.Event{Kind: events.Ban, Jail: "sshd", Prefix: p, BannedAt: at, Expires: at.Add(time.Hour), Count: 1,
			Origin: o, BanOrigin: o, Rule: rule}
	}
	restored := ban(filter, "failed")
	restored.Origin = events.Origin{Kind: events.OriginRestored}
	for _, tc := range []struct {
		name  string
		ev    events.Event
		want  []string
		avoid []string
	}{
		{"filter", ban(filter, "failed"), []string{`GAOLER_ORIGIN="filter"`, `GAOLER_RULE="failed"`}, []string{"GAOLER_UID", "GAOLER_PEER"}},
		{"manual", ban(manual, ""), []string{`GAOLER_ORIGIN="manual"`, `GAOLER_UID="1000"`}, []string{"GAOLER_RULE", "GAOLER_PEER"}},
		{"peer", ban(peer, ""), []string{`GAOLER_ORIGIN="peer"`, `GAOLER_PEER="h1"`}, []string{"GAOLER_UID", "GAOLER_RULE"}},
		{"manual unban of a peer's ban", events.Event{Kind: events.Unban, Jail: "sshd", Prefix: p, Count: 1,
			Origin: events.Origin{Kind: events.OriginManual}, BanOrigin: peer, Reason: "manual"},
			[]string{`GAOLER_ORIGIN="peer"`, `GAOLER_PEER="h1"`, `GAOLER_BY_UID="0"`, `GAOLER_REASON="manual"`}, []string{"GAOLER_UID="}},
		{"expiry", events.Event{Kind: events.Unban, Jail: "sshd", Prefix: p, Count: 1, BanOrigin: manual, Reason: "expired"},
			[]string{`GAOLER_ORIGIN="manual"`, `GAOLER_UID="1000"`, `GAOLER_REASON="expired"`}, []string{"GAOLER_BY_UID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			logEvents(NewTextLogger(&out))(tc.ev)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("entry lacks %s: %s", w, out.String())
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(out.String(), a) {
					t.Errorf("entry has %s: %s", a, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	logEvents(NewTextLogger(&out))(restored)
	if out.Len() != 0 {
		t.Errorf("a restored ban wrote %s", out.String())
	}
}
