package daemon

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gaoler/gaoler/metrics"
)

// TestMetricsScrape drives a ban through a batch and reads one scrape: the jail's failures by rule,
// the ban by origin, the active ban, the Hub's subscribers and a plugin's part.
func TestMetricsScrape(t *testing.T) {
	d, _, _ := testDaemon(t, "[jail.sshd]\nenabled = true\nmaxretry = 3\n")
	d.hub.Subscribe("metrics", 100, d.tally.Observe)
	d.metricsFills = append(d.metricsFills, func(s *metrics.Snapshot) {
		s.Actions = append(s.Actions, metrics.Action{Name: "mail", Sent: 2})
	})
	handle(d, failures("192.0.2.7", 3))
	settle(t, d)
	text, err := metrics.Text(metrics.NewRegistry(metrics.SourceFunc(func() metrics.Snapshot {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.metricsSnapshot()
	}), "test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`gaoler_bans_active{jail="sshd"} 1`,
		`gaoler_bans_total{jail="sshd",origin="filter"} 1`,
		`gaoler_action_sent_total{action="mail"} 2`,
		`gaoler_journal_reader_mode{mode="stopped"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`(?m)^gaoler_failures_total\{jail="sshd",rule="[^"]+"\} 3$`).MatchString(text) {
		t.Errorf("the 3 failures are not counted by rule:\n%s", text)
	}
	if !regexp.MustCompile(`(?m)^gaoler_events_handled_total\{subscriber="metrics"\} [1-9]`).MatchString(text) {
		t.Errorf("the Hub's subscribers are not in the scrape:\n%s", text)
	}
}
