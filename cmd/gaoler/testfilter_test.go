package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
)

func testFilterCmd(args []string, stdout, stderr *bytes.Buffer) int {
	return runTestFilter(args, stdout, stderr)
}

func TestTestFilterText(t *testing.T) {
	for _, tt := range []struct{ name, args string }{
		{"test-filter-config", "web --config testdata/config/ok/gaoler.toml testdata/test-filter/web.log"},
		{"test-filter-config-json", "web --json --config testdata/config/ok/gaoler.toml testdata/test-filter/web.log"},
		{"test-filter-sshd", "sshd testdata/test-filter/sshd.log"},
		{"test-filter-sshd-aggressive", "sshd --mode aggressive testdata/test-filter/sshd.log"},
		{"test-filter-sshd-json", "sshd --json testdata/test-filter/sshd.log"},
		{"test-filter-sshd-connections", "sshd testdata/test-filter/sshd-connections.log"},
		{"test-filter-sshd-connections-json", "sshd --json testdata/test-filter/sshd-connections.log"},
		{"test-filter-sshd-connections-ddos", "sshd --mode ddos testdata/test-filter/sshd-connections.log"},
		{"test-filter-sshd-connections-aggressive", "sshd --mode aggressive --json testdata/test-filter/sshd-connections.log"},
		{"test-filter-top", "web --top 1 --config testdata/config/ok/gaoler.toml testdata/test-filter/web.log"},
		{"test-filter-unknown", "nosuch --config testdata/config/ok/gaoler.toml testdata/test-filter/web.log"},
		{"test-filter-bad-mode", "sshd --mode paranoid testdata/test-filter/sshd.log"},
		{"test-filter-mode-on-config-filter", "web --mode ddos --config testdata/config/ok/gaoler.toml testdata/test-filter/web.log"},
		{"test-filter-bad-config", "web --config testdata/config/bad/gaoler.toml testdata/test-filter/web.log"},
		{"test-filter-no-file", "sshd testdata/test-filter/nosuch.log"},
		{"test-filter-usage", ""},
		{"test-filter-two-sources", "sshd --journal testdata/test-filter/sshd.log"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testenv.Golden(t, tt.name+".golden", runTool("test-filter", testFilterCmd, tt.args))
		})
	}
}

func TestTestFilterStdin(t *testing.T) {
	var lines []string
	for i := range 30 {
		lines = append(lines, "Nov 24 10:00:00 web nginx[1]: unrelated line "+string(rune('a'+i%26)))
	}
	lines = append(lines, `user "x": password mismatch, client: 192.0.2.44`)
	testFilterStdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	defer func() { testFilterStdin = os.Stdin }()
	testenv.Golden(t, "test-filter-stdin.golden", runTool("test-filter", testFilterCmd, "web --config testdata/config/ok/gaoler.toml -"))
}

func TestStripSyslog(t *testing.T) {
	for in, want := range map[string]string{
		"Nov 24 10:00:00 host sshd[12]: Failed password":                  "Failed password",
		"Nov  4 10:00:00 host sshd[12]: x":                                "x",
		"Nov 24 2026 10:00:00 host sshd: x":                               "x",
		"Nov 24 10:00:00.123456 host sshd-session[9]: x: y":               "x: y",
		"2026-11-24T10:00:00.123456+01:00 host sshd[12]: x":               "x",
		"2026-11-24T10:00:00Z host sshd[12]: x":                           "x",
		"<38>Nov 24 10:00:00 host sshd[12]: x":                            "x",
		"Failed password for root from 192.0.2.7 port 22 ssh2":            "Failed password for root from 192.0.2.7 port 22 ssh2",
		"Invalid user Nov 24 10:00:00 h s: from 192.0.2.7 port 22":        "Invalid user Nov 24 10:00:00 h s: from 192.0.2.7 port 22",
		"Nov 24 10:00:00 host sshd[12]: Nov 24 10:00:00 host sshd[12]: x": "Nov 24 10:00:00 host sshd[12]: x",
	} {
		if got := stripSyslog(in); got != want {
			t.Errorf("stripSyslog(%q) = %q, want %q", in, got, want)
		}
	}
}

// journalRemote is systemd-journal-remote, which turns journal export format into journal files.
const journalRemote = "/lib/systemd/systemd-journal-remote"

// journalDir writes export text into journal files in a fresh folder, deterministically.
func journalDir(t *testing.T, export string) string {
	t.Helper()
	_, err := os.Stat(journalRemote)
	testenv.Require(t, err == nil, "needs "+journalRemote+" (apt install systemd-journal-remote)")
	dir := t.TempDir()
	cmd := exec.Command(journalRemote, "--output="+filepath.Join(dir, "test.journal"), "-")
	cmd.Stdin = strings.NewReader(export)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", journalRemote, err, out)
	}
	return dir
}

// sshdExport is sshd's journal as a test sees it: trusted entries from root's sshd, and forged ones
// from an unprivileged user's logger that claim to be sshd.
func sshdExport() string {
	base := uint64(1795600800000000) // 2026-11-25 10:00:00 UTC
	trusted := []string{"_UID=0", "_GID=0", "_COMM=sshd", "SYSLOG_IDENTIFIER=sshd", "_PID=812", "_HOSTNAME=host", "PRIORITY=6", "_TRANSPORT=syslog"}
	forged := []string{"_UID=1000", "_GID=1000", "_COMM=logger", "SYSLOG_IDENTIFIER=sshd", "_PID=999", "_HOSTNAME=host", "PRIORITY=6", "_TRANSPORT=syslog"}
	session := []string{"_UID=0", "_GID=0", "_COMM=sshd-session", "SYSLOG_IDENTIFIER=sshd-session", "_PID=813", "_HOSTNAME=host", "PRIORITY=6"}
	// An sshd that exited before journald looked it up: root's, but no _COMM; and root's own
	// `logger -t sshd`, which has _COMM=logger.
	lost := []string{"_UID=0", "_GID=0", "SYSLOG_IDENTIFIER=sshd", "_PID=814", "_HOSTNAME=host", "PRIORITY=6", "_TRANSPORT=syslog"}
	rootLogger := []string{"_UID=0", "_GID=0", "_COMM=logger", "SYSLOG_IDENTIFIER=sshd", "_PID=998", "_HOSTNAME=host", "PRIORITY=6", "_TRANSPORT=syslog"}
	var b strings.Builder
	add := func(i int, fields []string, msg string) {
		b.WriteString(testenv.ExportEntry(base+uint64(i)*1000000, append(append([]string{}, fields...), "MESSAGE="+msg)...))
	}
	add(0, trusted, "Failed password for root from 192.0.2.7 port 22 ssh2")
	add(1, forged, "Failed password for root from 203.0.113.99 port 22 ssh2")
	add(2, session, "Invalid user oracle from 2001:db8::7 port 51000")
	add(3, trusted, "Accepted publickey for alice from 198.51.100.9 port 50000 ssh2")
	add(4, forged, "Invalid user x from 203.0.113.99 port 22")
	add(5, trusted, "Failed password for invalid user admin from 192.0.2.7 port 40022 ssh2")
	add(6, lost, "Failed password for root from 192.0.2.8 port 40100 ssh2")
	add(7, rootLogger, "Failed password for root from 203.0.113.99 port 22 ssh2")
	return b.String()
}

func TestTestFilterJournalDirectory(t *testing.T) {
	dir := journalDir(t, sshdExport())
	for _, tt := range []struct{ name, args string }{
		{"test-filter-journal-dir", "sshd --directory " + dir},
		{"test-filter-journal-dir-json", "sshd --json --directory " + dir},
		{"test-filter-journal-dir-since", "sshd --since '2026-11-25 10:00:03' --directory " + dir},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer setLocal(time.UTC)()
			got := runTool("test-filter", testFilterCmd, tt.args)
			testenv.Golden(t, tt.name+".golden", strings.ReplaceAll(got, dir, "DIR"))
			if strings.Contains(got, "203.0.113.99") {
				t.Errorf("a forged entry (logger -t sshd, from uid 1000 or from root) was tested:\n%s", got)
			}
		})
	}
}

// setLocal sets time.Local for a test and returns the function that restores it.
func setLocal(loc *time.Location) func() {
	old := time.Local
	time.Local = loc
	return func() { time.Local = old }
}

// TestTestFilterJournalTrust runs test-filter --journal against a real journald: a failure logged by a
// root process named sshd counts; the same line forged by an unprivileged user with logger -t sshd is
// never even read.
func TestTestFilterJournalTrust(t *testing.T) {
	testenv.Journald(t)
	runuser := testenv.RequireCommand(t, "runuser")
	logger := testenv.RequireCommand(t, "logger")

	n := time.Now().UnixNano()
	real := fmt.Sprintf("198.18.%d.%d", n/256%256, n%256)
	forged := fmt.Sprintf("198.19.%d.%d", n/256%256, n%256)
	// A sender that stays alive until its entry is read: journald takes _COMM from /proc/PID/comm, which
	// is gone if the process has already exited when journald gets to the datagram.
	sender := testenv.StartSender(t, testenv.JournalSocket, "sshd")
	defer sender.Close()
	if err := sender.Send(map[string]string{
		"MESSAGE": "Failed password for root from " + real + " port 22 ssh2", "SYSLOG_IDENTIFIER": "sshd",
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(runuser, "-u", "nobody", "--", logger, "-t", "sshd",
		"Failed password for root from "+forged+" port 22 ssh2").CombinedOutput(); err != nil {
		t.Fatalf("logger as nobody: %v: %s", err, out)
	}

	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = runTool("test-filter", testFilterCmd, "sshd --json --journal --since -5m")
		if strings.Contains(got, real) {
			break
		}
	}
	if !strings.Contains(got, `"host":"`+real+`"`) {
		t.Errorf("the failure from root's sshd (%s) was not found:\n%s", real, got)
	}
	if strings.Contains(got, forged) {
		t.Errorf("the failure forged by nobody with logger -t sshd was read:\n%s", got)
	}
}

// TestTestFilterJournalSSHDAuth sends entries from a root process named sshd-auth (OpenSSH 10's
// authentication process) through the real journald: the default match trusts them, and the
// entries' _PID is their connection, so the Failed line after Invalid user is the same attempt.
func TestTestFilterJournalSSHDAuth(t *testing.T) {
	testenv.Journald(t)
	n := time.Now().UnixNano()
	host := fmt.Sprintf("198.18.%d.%d", n/256%256, n%256)
	sender := testenv.StartSender(t, testenv.JournalSocket, "sshd-auth")
	defer sender.Close()
	for _, msg := range []string{
		"Invalid user nosuchuser from " + host + " port 50000",
		"Failed password for invalid user nosuchuser from " + host + " port 50000 ssh2",
	} {
		if err := sender.Send(map[string]string{"MESSAGE": msg, "SYSLOG_IDENTIFIER": "sshd-auth"}); err != nil {
			t.Fatal(err)
		}
	}
	var mine []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		mine = mine[:0]
		for _, l := range strings.Split(runTool("test-filter", testFilterCmd, "sshd --json --journal --since -1m"), "\n") {
			if strings.HasPrefix(l, `{"line":`) && strings.Contains(l, " from "+host+" port ") {
				mine = append(mine, l)
			}
		}
		if len(mine) == 2 {
			break
		}
	}
	if len(mine) != 2 {
		t.Fatalf("want the 2 entries from sshd-auth, got:\n%s", strings.Join(mine, "\n"))
	}
	if !strings.Contains(mine[0], `"match":true`) || !strings.Contains(mine[0], `"rule":"invalid-user"`) {
		t.Errorf("Invalid user from sshd-auth is no failure: %s", mine[0])
	}
	if !strings.Contains(mine[1], `"repeat":true`) || strings.Contains(mine[1], `"match":true`) {
		t.Errorf("the Failed line of the same connection (same _PID) is not a repeat: %s", mine[1])
	}
	var a, b struct{ PID int }
	if json.Unmarshal([]byte(mine[0]), &a) != nil || json.Unmarshal([]byte(mine[1]), &b) != nil || a.PID == 0 || a.PID != b.PID {
		t.Errorf("the two entries have different or no _PID:\n%s\n%s", mine[0], mine[1])
	}
}
