package journal

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/sdjournal"
	"github.com/gaoler/gaoler/internal/testenv"
)

// benchDir is where the benchmark's journal (1,000,000 entries) is kept between runs.
const benchDir = "/var/tmp/gaoler-bench-journal"

const benchEntries = 1_000_000

var benchMatch = []string{"_UID=0", "_COMM=sshd", "_COMM=sshd-session", "+", "_UID=0", "_SYSTEMD_UNIT=ssh.service"}

// benchJournal returns the directory of the benchmark journal, generating it with
// systemd-journal-remote on first use: 10% sshd entries from about 20,000 addresses, the rest noise
// from other units.
func benchJournal(b *testing.B) string {
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
		for i := 0; i < benchEntries; i++ {
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
	testenv.ExportStreamToJournalDir(b, benchDir, pr)
	if err := os.WriteFile(filepath.Join(benchDir, "complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return benchDir
}

// BenchmarkBareLoop is the reference: go-systemd's sdjournal, Next and GetDataValue("MESSAGE") with the
// same match, over the whole benchmark journal.
func BenchmarkBareLoop(b *testing.B) {
	dir := benchJournal(b)
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		j, err := sdjournal.NewJournalFromDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range benchMatch {
			if t == "+" {
				err = j.AddDisjunction()
			} else {
				err = j.AddMatch(t)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		n = 0
		for {
			r, err := j.Next()
			if err != nil {
				b.Fatal(err)
			}
			if r == 0 {
				break
			}
			if _, err := j.GetDataValue("MESSAGE"); err != nil {
				b.Fatal(err)
			}
			n++
		}
		j.Close()
	}
	b.StopTimer()
	if n != benchEntries/10 {
		b.Fatalf("%d entries, want %d", n, benchEntries/10)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkReader is the Reader delivering the same entries (cursor, timestamp, MESSAGE, _COMM, _PID and
// the match's fields), routed through Satisfied as the daemon does.
func BenchmarkReader(b *testing.B) {
	dir := benchJournal(b)
	m, err := ParseMatch(benchMatch)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		r, err := Open(Options{Directory: dir, Matches: []Match{m}})
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		ctx, cancel := context.WithCancel(context.Background())
		r.Run(ctx, func(batch []Entry) uint64 {
			for k := range batch {
				if m.Satisfied(&batch[k]) {
					n++
				}
			}
			if n >= benchEntries/10 {
				cancel()
			}
			return 0
		})
		cancel()
		r.Close()
	}
	b.StopTimer()
	if n != benchEntries/10 {
		b.Fatalf("%d entries, want %d", n, benchEntries/10)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
