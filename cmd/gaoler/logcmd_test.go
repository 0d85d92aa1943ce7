package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

func logCmd(args []string, stdout, stderr *bytes.Buffer) int {
	return logCommand(context.Background(), args, stdout, stderr)
}

// eventsExport is a day of gaolerd's events in journal export format, with an sshd entry between
// them that `gaoler log` must not show.
func eventsExport() string {
	base := uint64(1795600800000000) // 2026-11-25 10:00:00 UTC
	gaolerd := func(id, pri string, fields ...string) []string {
		return append([]string{"MESSAGE_ID=" + id, "PRIORITY=" + pri, "SYSLOG_IDENTIFIER=gaolerd", "_PID=4242",
			"_HOSTNAME=host", "_UID=0", "_COMM=gaolerd"}, fields...)
	}
	var b strings.Builder
	add := func(sec int, fields []string) {
		b.WriteString(testenv.ExportEntry(base+uint64(sec)*1000000, fields...))
	}
	add(0, gaolerd(events.MsgStarted, "6", "MESSAGE=Started: 2 jails, 0 bans"))
	add(5, gaolerd(events.MsgFailure, "7", "MESSAGE=Failure from 192.0.2.7 in jail sshd (rule: failregex[0])",
		"GAOLER_JAIL=sshd", "GAOLER_ADDRESS=192.0.2.7", "GAOLER_RULE=failregex[0]"))
	add(6, []string{"MESSAGE=Failed password for root from 192.0.2.7 port 22 ssh2", "_COMM=sshd", "_PID=812", "SYSLOG_IDENTIFIER=sshd", "_HOSTNAME=host"})
	add(30, gaolerd(events.MsgBan, "5", "MESSAGE=Banned 192.0.2.7 in jail sshd for 10m (ban #1, until 2026-11-25 10:10:30)",
		"GAOLER_JAIL=sshd", "GAOLER_ADDRESS=192.0.2.7", "GAOLER_BANTIME=600", "GAOLER_EXPIRES_USEC=1795601430000000", "GAOLER_BAN_COUNT=1"))
	add(40, gaolerd(events.MsgBan, "5", "MESSAGE=Banned 198.51.100.4 in jail web for 1h (ban #2, until 2026-11-25 11:00:40)",
		"GAOLER_JAIL=web", "GAOLER_ADDRESS=198.51.100.4", "GAOLER_BANTIME=3600", "GAOLER_EXPIRES_USEC=1795604440000000", "GAOLER_BAN_COUNT=2",
		"GAOLER_ORIGIN=manual", "GAOLER_UID=1000"))
	add(60, gaolerd(events.MsgReloaded, "6", "MESSAGE=Reloaded: 2 jails"))
	add(630, gaolerd(events.MsgUnban, "5", "MESSAGE=Unbanned 192.0.2.7 in jail sshd (expired)",
		"GAOLER_JAIL=sshd", "GAOLER_ADDRESS=192.0.2.7", "GAOLER_REASON=expired"))
	add(650, gaolerd(events.MsgUnban, "5", "MESSAGE=Unbanned 198.51.100.4 in jail web (manual)",
		"GAOLER_JAIL=web", "GAOLER_ADDRESS=198.51.100.4", "GAOLER_REASON=manual", "GAOLER_ORIGIN=manual", "GAOLER_UID=1000",
		"GAOLER_BY_UID=0"))
	add(700, gaolerd(events.MsgFirewallRestored, "5", "MESSAGE=Firewall restored: 1 bans", "GAOLER_COUNT=1"))
	add(800, gaolerd(events.MsgStopped, "6", "MESSAGE=Stopped"))
	return b.String()
}

func TestLogDirectory(t *testing.T) {
	dir := journalDir(t, eventsExport())
	defer setLocal(time.UTC)()
	for _, tt := range []struct{ name, args string }{
		{"log", "--directory " + dir},
		{"log-n", "-n 2 --directory " + dir},
		{"log-jail", "--jail sshd --directory " + dir},
		{"log-jail-n", "--jail sshd -n 1 --directory " + dir},
		{"log-since", "--since '2026-11-25 10:00:30' --directory " + dir},
		{"log-since-n", "--since '2026-11-25 10:00:30' -n 2 --directory " + dir},
		{"log-json", "--json --jail web --directory " + dir},
		{"log-json-empty", "--json --jail nosuch --directory " + dir},
		{"log-bad-since", "--since 'next tuesday' --directory " + dir},
		{"log-no-directory", "--directory " + dir + "/nosuch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runTool("log", logCmd, tt.args)
			testenv.Golden(t, tt.name+".golden", strings.ReplaceAll(got, dir, "DIR"))
		})
	}
}

func TestParseSince(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	now := time.Date(2026, 11, 25, 10, 30, 0, 0, loc)
	for in, want := range map[string]time.Time{
		"2026-11-25 10:00:00":  time.Date(2026, 11, 25, 10, 0, 0, 0, loc),
		"2026-11-24 09:15":     time.Date(2026, 11, 24, 9, 15, 0, 0, loc),
		"2026-11-20":           time.Date(2026, 11, 20, 0, 0, 0, 0, loc),
		"2026-11-25T10:00:00Z": time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		"08:00":                time.Date(2026, 11, 25, 8, 0, 0, 0, loc),
		"today":                time.Date(2026, 11, 25, 0, 0, 0, 0, loc),
		"yesterday":            time.Date(2026, 11, 24, 0, 0, 0, 0, loc),
		"now":                  now,
		"-1h":                  now.Add(-time.Hour),
		"1h ago":               now.Add(-time.Hour),
		"1d12h ago":            now.Add(-36 * time.Hour),
		"2 d ago":              now.Add(-48 * time.Hour),
		"-90":                  now.Add(-90 * time.Second),
	} {
		got, err := parseSince(in, now, loc)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1x", "2026-13-01", "1h before"} {
		if got, err := parseSince(in, now, loc); err == nil {
			t.Errorf("parseSince(%q) = %v, want an error", in, got)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogJournald sends events through a real journald and reads them back with `gaoler log`, `gaoler
// log -f` and recentEvents.
func TestLogJournald(t *testing.T) {
	testenv.RequireRoot(t)
	_, err := os.Stat("/run/systemd/journal/socket")
	testenv.Require(t, err == nil, "needs a running journald (/run/systemd/journal/socket)")

	jail := fmt.Sprintf("t%d", time.Now().UnixNano()%1e9) // a jail name no other run used
	send := func(id, msg string) {
		t.Helper()
		err := journal.Send(msg, journal.PriNotice, map[string]string{
			"MESSAGE_ID": id, "SYSLOG_IDENTIFIER": "gaolerd", "GAOLER_JAIL": jail, "GAOLER_ADDRESS": "192.0.2.7",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	send(events.MsgBan, "Banned 192.0.2.7 in jail "+jail+" for 10m (ban #1)")
	send(events.MsgUnban, "Unbanned 192.0.2.7 in jail "+jail+" (manual)")
	send("00000000000000000000000000000000", "not a gaolerd event in jail "+jail)

	// journald writes asynchronously: wait (bounded) until both events are readable.
	var lines []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if lines, err = recentEvents(jail, 5); err != nil {
			t.Fatal(err)
		}
		if len(lines) == 2 {
			break
		}
	}
	if len(lines) != 2 || !strings.HasSuffix(lines[0], ": Banned 192.0.2.7 in jail "+jail+" for 10m (ban #1)") ||
		!strings.Contains(lines[1], " gaolerd[") || !strings.HasSuffix(lines[1], "(manual)") {
		t.Fatalf("recentEvents = %q", lines)
	}

	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- logCommand(ctx, []string{"-f", "-n", "1", "--jail", jail}, &stdout, &stderr) }()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if strings.Contains(stdout.String(), what) {
				return
			}
		}
		t.Fatalf("gaoler log -f did not print %q; got:\n%s%s", what, stdout.String(), stderr.String())
	}
	waitFor("(manual)")
	send(events.MsgBan, "Banned 192.0.2.7 in jail "+jail+" for 20m (ban #2)")
	waitFor("(ban #2)")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d, stderr %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gaoler log -f did not stop when cancelled")
	}
	if got := stdout.String(); strings.Contains(got, "(ban #1)") || strings.Count(got, "\n") != 2 {
		t.Errorf("-n 1 -f printed:\n%s", got)
	}
}

// TestLogFollowFromNothing follows a jail that has no events yet: the first one logged appears.
func TestLogFollowFromNothing(t *testing.T) {
	testenv.RequireRoot(t)
	_, err := os.Stat("/run/systemd/journal/socket")
	testenv.Require(t, err == nil, "needs a running journald (/run/systemd/journal/socket)")

	jail := fmt.Sprintf("f%d", time.Now().UnixNano()%1e9)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() { done <- logCommand(ctx, []string{"-f", "--jail", jail}, &stdout, &stderr) }()
	time.Sleep(300 * time.Millisecond) // let it reach the tail; an entry sent before would be printed too, which is fine
	err = journal.Send("Banned 192.0.2.8 in jail "+jail+" for 10m (ban #1)", journal.PriNotice, map[string]string{
		"MESSAGE_ID": events.MsgBan, "SYSLOG_IDENTIFIER": "gaolerd", "GAOLER_JAIL": jail,
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !strings.Contains(stdout.String(), "(ban #1)"); {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if got := stdout.String(); !strings.Contains(got, "Banned 192.0.2.8 in jail "+jail) {
		t.Errorf("gaoler log -f printed %q, stderr %q", got, stderr.String())
	}
}
