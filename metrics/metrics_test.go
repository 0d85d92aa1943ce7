package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gaoler/gaoler/events"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func testSnapshot() Snapshot {
	return Snapshot{
		Jails: []Jail{{
			Name:           "sshd",
			FailuresByRule: map[string]uint64{"failed password": 7, "invalid user": 3},
			Active:         2, Tracked: 5,
			Packets: 40, Bytes: 2400, CountersOK: true,
		}, {
			Name: `we"ird\jail`, // a jail name is the admin's, but label values must still be escaped
		}},
		Reader:      Reader{LastEntry: t0.Add(-1500 * time.Millisecond), Mode: "hot"},
		Checkpoint:  Checkpoint{LastSaved: t0.Add(-3 * time.Second), Failures: 1},
		Subscribers: []events.Stats{{Name: "journal", Queued: 1, Handled: 9, Dropped: 0}, {Name: "action mail", Dropped: 4}},
		Actions:     []Action{{Name: "mail", Sent: 2, Failed: 1, Dropped: 4, TimedOut: 1}},
		Fleet:       &Fleet{Connected: true, Peers: 2, Applied: 5, Published: 6, Refused: 1, Outbox: 3},
	}
}

// parse gathers reg as text and parses it back, as Prometheus would.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, text)
	}
	return mfs
}

// value returns the value of the series of family name whose labels include want.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range mf.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func TestCollectorFigures(t *testing.T) {
	tally := NewTally()
	p := netip.MustParsePrefix("192.0.2.7/32")
	for _, ev := range []events.Event{
		{Kind: events.Ban, Jail: "sshd", Prefix: p, Origin: events.Origin{Kind: events.OriginFilter}},
		{Kind: events.Ban, Jail: "sshd", Prefix: p, Origin: events.Origin{Kind: events.OriginFilter}},
		{Kind: events.Ban, Jail: "sshd", Prefix: p, Origin: events.Origin{Kind: events.OriginManual}},
		{Kind: events.Ban, Jail: "sshd", Prefix: p, Origin: events.Origin{Kind: events.OriginPeer, Peer: "h1"}},
		{Kind: events.Ban, Jail: "sshd", Prefix: p, Origin: events.Origin{Kind: events.OriginRestored}},
		{Kind: events.Unban, Jail: "sshd", Prefix: p, Reason: "expired"},
		{Kind: events.Unban, Jail: "sshd", Prefix: p, Reason: "manual"},
		{Kind: events.Unban, Jail: "gone", Prefix: p, Reason: "manual"}, // a jail not in the snapshot: not shown
	} {
		tally.Observe(ev)
	}
	src := SourceFunc(func() Snapshot {
		s := testSnapshot()
		tally.Fill(&s)
		return s
	})
	text := gather(t, src)
	mfs := parse(t, text)
	sshd := map[string]string{"jail": "sshd"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gaoler_failures_total", map[string]string{"jail": "sshd", "rule": "failed password"}, 7},
		{"gaoler_failures_total", map[string]string{"jail": "sshd", "rule": "invalid user"}, 3},
		{"gaoler_bans_total", map[string]string{"jail": "sshd", "origin": "filter"}, 2},
		{"gaoler_bans_total", map[string]string{"jail": "sshd", "origin": "manual"}, 1},
		{"gaoler_bans_total", map[string]string{"jail": "sshd", "origin": "peer"}, 1},
		{"gaoler_bans_restored_total", sshd, 1},
		{"gaoler_unbans_total", map[string]string{"jail": "sshd", "reason": "expired"}, 1},
		{"gaoler_unbans_total", map[string]string{"jail": "sshd", "reason": "manual"}, 1},
		{"gaoler_bans_active", sshd, 2},
		{"gaoler_tracked_windows", sshd, 5},
		{"gaoler_blocked_packets_total", sshd, 40},
		{"gaoler_blocked_bytes_total", sshd, 2400},
		{"gaoler_bans_active", map[string]string{"jail": `we"ird\jail`}, 0},
		{"gaoler_journal_lag_seconds", nil, 1.5},
		{"gaoler_journal_reader_mode", map[string]string{"mode": "hot"}, 1},
		{"gaoler_journal_reader_mode", map[string]string{"mode": "idle"}, 0},
		{"gaoler_checkpoint_age_seconds", nil, 3},
		{"gaoler_checkpoint_failures_total", nil, 1},
		{"gaoler_events_queued", map[string]string{"subscriber": "journal"}, 1},
		{"gaoler_events_dropped_total", map[string]string{"subscriber": "action mail"}, 4},
		{"gaoler_action_sent_total", map[string]string{"action": "mail"}, 2},
		{"gaoler_action_failed_total", map[string]string{"action": "mail"}, 1},
		{"gaoler_action_dropped_total", map[string]string{"action": "mail"}, 4},
		{"gaoler_action_timeouts_total", map[string]string{"action": "mail"}, 1},
		{"gaoler_fleet_connected", nil, 1},
		{"gaoler_fleet_peers", nil, 2},
		{"gaoler_fleet_applied_total", nil, 5},
		{"gaoler_fleet_outbox", nil, 3},
	}
	for _, c := range checks {
		if got := value(t, mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"gaoler_unbans_total"} {
		for _, m := range mfs[name].Metric {
			for _, l := range m.Label {
				if l.GetName() == "jail" && l.GetValue() == "gone" {
					t.Errorf("%s has a series for a jail the snapshot does not have", name)
				}
			}
		}
	}
}

// gather scrapes a registry with the collector's clock at t0, plus the process and build metrics.
func gather(t *testing.T, src Source) string {
	t.Helper()
	text, err := Text(newRegistry(src, "1.2.3", func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestProcessAndBuildMetrics(t *testing.T) {
	mfs := parse(t, gather(t, SourceFunc(func() Snapshot { return Snapshot{} })))
	if v := value(t, mfs, "gaoler_build_info", map[string]string{"version": "1.2.3"}); v != 1 {
		t.Errorf("gaoler_build_info = %v", v)
	}
	if v := value(t, mfs, "process_resident_memory_bytes", nil); v <= 0 {
		t.Errorf("process_resident_memory_bytes = %v, want > 0", v)
	}
	if _, ok := mfs["process_cpu_seconds_total"]; !ok {
		t.Error("no process_cpu_seconds_total")
	}
	if _, ok := mfs["gaoler_fleet_connected"]; ok {
		t.Error("fleet metrics without fleet mode")
	}
	if _, ok := mfs["gaoler_journal_lag_seconds"]; ok {
		t.Error("a lag before any entry was processed")
	}
}

func TestServeNegotiatesFormats(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewRegistry(SourceFunc(testSnapshot), "1.2.3")) }()
	url := "http://" + ln.Addr().String()
	get := func(path, accept string) (string, string, int) {
		req, _ := http.NewRequest("GET", url+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body), resp.Header.Get("Content-Type"), resp.StatusCode
	}
	body, ctype, code := get("/metrics", "")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("GET /metrics: %d %s", code, ctype)
	}
	parse(t, body)
	body, ctype, _ = get("/metrics", "application/openmetrics-text; version=1.0.0")
	if !strings.HasPrefix(ctype, "application/openmetrics-text") || !strings.HasSuffix(strings.TrimSpace(body), "# EOF") {
		t.Fatalf("OpenMetrics: %s, body ends %q", ctype, body[max(0, len(body)-40):])
	}
	if _, _, code := get("/nope", ""); code != 404 {
		t.Fatalf("GET /nope: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

// TestListenerFromSystemd passes a listening socket as systemd does (fd 3, LISTEN_FDS,
// LISTEN_FDNAMES) to a child process, which takes it with Listener and serves one scrape.
func TestListenerFromSystemd(t *testing.T) {
	if os.Getenv("GAOLER_METRICS_CHILD") == "1" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid())) // systemd sets it between fork and exec
		ln, err := Listener()
		if err != nil || ln == nil {
			os.Stderr.WriteString("no listener: " + errString(err) + "\n")
			os.Exit(3)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		Serve(ctx, ln, NewRegistry(SourceFunc(testSnapshot), "child"))
		os.Exit(0)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the child holds the socket through f
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerFromSystemd$")
	cmd.Env = append(os.Environ(), "GAOLER_METRICS_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES="+SocketName)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer cmd.Process.Kill()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mfs := parse(t, string(body))
	if v := value(t, mfs, "gaoler_build_info", map[string]string{"version": "child"}); v != 1 {
		t.Fatalf("the child did not serve: %v", v)
	}
}

func TestNoSocketNoListener(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	ln, err := Listener()
	if err != nil || ln != nil {
		t.Fatalf("Listener() = %v, %v; want nil, nil without LISTEN_FDS", ln, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "none passed"
	}
	return err.Error()
}

// BenchmarkScrape is one scrape of a daemon's worth of figures: the cost does not depend on how many
// bans are active, since a Snapshot carries counts, not elements.
func BenchmarkScrape(b *testing.B) {
	s := testSnapshot()
	s.Jails[0].Active = 100000
	reg := NewRegistry(SourceFunc(func() Snapshot { return s }), "bench")
	for i := 0; i < b.N; i++ {
		if _, err := Text(reg); err != nil {
			b.Fatal(err)
		}
	}
}
