package journal

import (
	"context"
	"testing"
	"time"

	"github.com/gaoler/gaoler/internal/testenv"
	"golang.org/x/sys/unix"
)

const benchEntries = testenv.BenchJournalEntries

var benchMatch = testenv.BenchMatch

func benchJournal(b *testing.B) string { return testenv.BenchJournal(b) }

// BenchmarkBareLoop is the reference: go-systemd's sdjournal, Next and GetDataValue("MESSAGE") with the
// same match, over the whole benchmark journal.
func BenchmarkBareLoop(b *testing.B) {
	dir := benchJournal(b)
	b.ResetTimer()
	cpu0 := cpuTime()
	var n int
	for i := 0; i < b.N; i++ {
		n, _ = testenv.BareLoop(b, dir, benchMatch)
	}
	b.StopTimer()
	if n != benchEntries/10 {
		b.Fatalf("%d entries, want %d", n, benchEntries/10)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(n)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "entries/cpu-s")
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
	cpu0 := cpuTime()
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
	b.ReportMetric(float64(n)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "entries/cpu-s")
}

// cpuTime returns the process's CPU time (user and system), the measure the daemon's catch-up benchmark
// uses: it counts the Go runtime's own threads and is less disturbed by other load than wall time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
