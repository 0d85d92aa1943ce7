package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/bareloop"
)

// benchDir is where the benchmark's journal (1,000,000 entries) is kept between runs.
const benchDir = "/var/tmp/gaoler-bench-journal"

// BenchJournalEntries is how many entries the benchmark journal holds; a tenth of them are sshd's.
const BenchJournalEntries = 1_000_000

// BenchJournal returns the directory of the benchmark journal (kept in /var/tmp between runs), generating it with
// systemd-journal-remote on first use: 10% sshd entries from about 20,000 addresses, the rest noise
// from other units.
func BenchJournal(b testing.TB) string {
	if m, _ := filepath.Glob(filepath.Join(benchDir, "*.journal")); len(m) > 0 {
		if _, err := os.Stat(filepath.Join(benchDir, "complete")); err == nil {
			return benchDir
		}
	}
	os.RemoveAll(benchDir)
	if err := os.MkdirAll(benchDir, 0o755); err != nil {
		b.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		start := time.Now().Add(-24 * time.Hour)
		units := []string{"cron.service", "nginx.service", "systemd-logind.service", "dbus.service", "postfix.service"}
		comms := []string{"cron", "nginx", "systemd-logind", "dbus-daemon", "smtpd"}
		for i := 0; i < BenchJournalEntries; i++ {
			ts := start.Add(time.Duration(i) * 50 * time.Millisecond)
			fmt.Fprintf(w, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"+
				"_MACHINE_ID=fedcba9876543210fedcba9876543210\n_HOSTNAME=bench\n_TRANSPORT=syslog\nPRIORITY=6\nSYSLOG_FACILITY=10\n",
				ts.UnixMicro(), int64(i)*50000+1)
			if i%10 == 0 {
				a := i / 10 % 20000
				fmt.Fprintf(w, "_UID=0\n_GID=0\n_COMM=sshd\n_EXE=/usr/sbin/sshd\n_SYSTEMD_UNIT=ssh.service\n"+
					"SYSLOG_IDENTIFIER=sshd\n_PID=%d\n_CMDLINE=sshd: root [priv]\n"+
					"MESSAGE=Failed password for root from 198.%d.%d.%d port %d ssh2\n\n",
					1000+i%30000, 18+a/65536, a/256%256, a%256, 1024+i%60000)
				continue
			}
			k := i % len(units)
			fmt.Fprintf(w, "_UID=%d\n_GID=0\n_COMM=%s\n_EXE=/usr/sbin/%s\n_SYSTEMD_UNIT=%s\nSYSLOG_IDENTIFIER=%s\n_PID=%d\n"+
				"MESSAGE=%s: request %d handled in %d ms\n\n", 33*(k%2), comms[k], comms[k], units[k], comms[k], 2000+k, comms[k], i, i%997)
		}
		w.Flush()
		pw.Close()
	}()
	ExportStreamToJournalDir(b, benchDir, pr)
	if err := os.WriteFile(filepath.Join(benchDir, "complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return benchDir
}

// BenchMatch is what sd-journal is given for the sshd filter's default match (jails.SSHD's
// DefaultMatch through journal.Match.SDTerms: one field of each alternative pre-selects, the rest of
// the trust rule is checked in Go), so the journal reader's benchmark reads with the same match as
// its reference loop.
var BenchMatch = []string{"_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service", "+",
	"_COMM=sshd", "_COMM=sshd-session", "+",
	"SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"}

// BenchReferenceMatch is the catch-up benchmark's reference: the bench journal's sshd entries read
// through their single most selective term, the least any reader of them can do.
var BenchReferenceMatch = []string{"_SYSTEMD_UNIT=ssh.service"}

// BareLoop is the benchmarks' reference reader (package bareloop) in the calling process: it returns
// how many entries it read and the timestamp of the last one.
func BareLoop(tb testing.TB, dir string, match []string) (n int, lastUsec uint64) {
	n, lastUsec, err := bareloop.Read(dir, match)
	if err != nil {
		tb.Fatal(err)
	}
	return n, lastUsec
}
