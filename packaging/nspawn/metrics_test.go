package nspawn

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricsURL is where gaolerd-metrics.socket listens as shipped.
const metricsPort = 10191

// scrape fetches /metrics from the socket-activated endpoint inside the container (with bash's
// /dev/tcp: the root has no curl) and returns the body.
func scrape(t *testing.T, c *container) string {
	t.Helper()
	out := c.run(t, 10*time.Second, bash(fmt.Sprintf(
		`exec 3<>/dev/tcp/127.0.0.1/%d && printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && cat <&3`, metricsPort)))
	head, body, ok := strings.Cut(out, "\r\n\r\n")
	if !ok || !strings.HasPrefix(head, "HTTP/1.0 200") {
		t.Fatalf("GET /metrics:\n%s", lastLines(out, 10))
	}
	return body
}

// bash runs script with bash (the container's sh is dash, which has no /dev/tcp).
func bash(script string) string {
	return "bash -c '" + strings.ReplaceAll(script, "'", `'\''`) + "'"
}

// metricValue returns the value of series (a name with its labels, as the text format writes it).
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no series %s in:\n%s", series, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// rulePackets sums the packet counters of jail's rules, as nft prints them.
func rulePackets(t *testing.T, c *container, jail string) float64 {
	t.Helper()
	out := c.run(t, 10*time.Second, "nft -j list chain inet gaoler input")
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	total := 0.0
	for _, obj := range doc.Nftables {
		raw, ok := obj["rule"]
		if !ok {
			continue
		}
		var r struct {
			Comment string
			Expr    []map[string]json.RawMessage
		}
		json.Unmarshal(raw, &r)
		if !strings.HasPrefix(r.Comment, "gaoler jail "+jail+" ") {
			continue
		}
		for _, e := range r.Expr {
			if cnt, ok := e["counter"]; ok {
				var n struct{ Packets float64 }
				json.Unmarshal(cnt, &n)
				total += n.Packets
			}
		}
	}
	return total
}

// checkMetrics enables the shipped-disabled metrics socket on the booted root, has gaolerd take it,
// and checks the endpoint against gaoler status, nft and a new ban from real sshd failures.
func checkMetrics(t *testing.T, c *container) {
	if out, _ := c.exec(10*time.Second, "systemctl is-enabled gaolerd-metrics.socket"); strings.TrimSpace(out) != "disabled" {
		t.Errorf("gaolerd-metrics.socket after install: is-enabled %q, want disabled", strings.TrimSpace(out))
	}
	if _, err := c.exec(5*time.Second, bash(fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", metricsPort))); err == nil {
		t.Errorf("port %d answers before the socket is enabled", metricsPort)
	}
	banEntries := func() int {
		return len(journalJSON(t, c, "journalctl -b -u gaolerd -o json MESSAGE_ID="+banMessageID))
	}
	before := banEntries()
	if out, err := c.exec(60*time.Second, "systemctl enable gaolerd-metrics.socket && systemctl stop gaolerd && systemctl start gaolerd-metrics.socket gaolerd && systemctl is-active gaolerd"); err != nil {
		t.Fatalf("enabling the metrics socket: %v\n%s\n%s", err, out, c.diag("systemctl status --no-pager gaolerd-metrics.socket gaolerd; journalctl -b --no-pager -n 40 -u gaolerd-metrics.socket -u gaolerd"))
	}

	if n := banEntries(); n != before {
		t.Errorf("stopping and starting gaolerd wrote %d ban entries (a restored ban is not announced)", n-before)
	}
	// A connection from a banned address is refused and counted by the jail's rule.
	c.exec(15*time.Second, sshCmd(attacker4, "Correct-Horse-7"))
	// The rule's counters move whenever a packet of a banned address comes (a late retransmission of
	// an attacker's earlier connection, say): the scrape's figure lies between nft's before and after.
	kernelBefore := rulePackets(t, c, "sshd")
	text := scrape(t, c)
	kernelAfter := rulePackets(t, c, "sshd")
	if active := metricValue(t, text, `gaoler_bans_active{jail="sshd"}`); active != 2 {
		t.Errorf("gaoler_bans_active = %v, want 2", active)
	}
	status := c.run(t, 10*time.Second, "gaoler status --json sshd")
	var st struct {
		CurrentlyBanned float64 `json:"currently_banned"`
	}
	json.Unmarshal([]byte(status), &st)
	if got := metricValue(t, text, `gaoler_bans_active{jail="sshd"}`); got != st.CurrentlyBanned {
		t.Errorf("gaoler_bans_active %v, gaoler status says %v banned\n%s", got, st.CurrentlyBanned, status)
	}
	packets := metricValue(t, text, `gaoler_blocked_packets_total{jail="sshd"}`)
	if packets < 1 || packets < kernelBefore || packets > kernelAfter {
		t.Errorf("gaoler_blocked_packets_total %v, nft's counters %v before the scrape and %v after (want between, and at least the refused connection)",
			packets, kernelBefore, kernelAfter)
	}
	for _, series := range []string{"gaoler_journal_lag_seconds", "gaoler_checkpoint_age_seconds", "process_resident_memory_bytes",
		`gaoler_journal_reader_mode{mode="idle"}`, "process_cpu_seconds_total"} {
		metricValue(t, text, series)
	}

	// A new ban from real failed logins moves the counters.
	const third = "192.0.2.8"
	c.run(t, 10*time.Second, "ip addr add "+third+"/32 dev lo")
	attempts := ""
	for i := 0; i < maxRetry; i++ {
		attempts += "(" + sshCmd(third, "wrong-password") + ") & "
	}
	c.exec(30*time.Second, attempts+"wait")
	c.waitFor(t, 15*time.Second, "the third attacker banned", "nft list set inet gaoler sshd_v4 | grep -qF "+third)
	after := scrape(t, c)
	if n := banEntries(); n != before+1 {
		t.Errorf("the third attacker's ban: %d new ban entries, want 1", n-before)
	}
	if got := metricValue(t, after, `gaoler_bans_active{jail="sshd"}`); got != 3 {
		t.Errorf("after a new ban, gaoler_bans_active = %v, want 3", got)
	}
	if got := metricValue(t, after, `gaoler_bans_total{jail="sshd",origin="filter"}`); got != 1 {
		t.Errorf("after a new ban, gaoler_bans_total{origin=filter} = %v, want 1 (counted since the restart)", got)
	}
	if !regexp.MustCompile(`(?m)^gaoler_failures_total\{jail="sshd",rule="[^"]+"\} [1-9]`).MatchString(after) {
		t.Errorf("no failures counted by rule:\n%s", after)
	}
	// gaoler metrics prints the same figures over the bus.
	if text := c.run(t, 10*time.Second, "gaoler metrics"); metricValue(t, text, `gaoler_bans_active{jail="sshd"}`) != 3 {
		t.Errorf("gaoler metrics:\n%s", lastLines(text, 20))
	}
	// Unbanning the third attacker is counted too.
	c.run(t, 10*time.Second, "gaoler unban sshd "+third)
	if got := metricValue(t, scrape(t, c), `gaoler_unbans_total{jail="sshd",reason="manual"}`); got != 1 {
		t.Errorf("after gaoler unban, gaoler_unbans_total{reason=manual} = %v, want 1", got)
	}
	// The booted host is a healthy one: gaoler doctor says so (exit 0).
	if out, err := c.exec(30*time.Second, "gaoler doctor"); err != nil {
		t.Errorf("gaoler doctor on the booted host: %v\n%s", err, out)
	} else {
		t.Logf("gaoler doctor:\n%s", out)
	}
	out, _ := c.exec(30*time.Second, "systemd-analyze security --no-pager gaolerd.service | tail -n 1")
	t.Logf("with the metrics socket: %s", strings.TrimSpace(out))
}
