package daemon

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/journal"
)

// BenchmarkHandleBatch measures the daemon's own work per journal entry, without the journal: routing
// through the jails' matches, the engine, the firewall queue and the event bookkeeping, on sshd
// failures from 20,000 addresses read from a backlog (as when catching up).
func BenchmarkHandleBatch(b *testing.B) {
	dir := b.TempDir()
	cfg, err := config.Parse(dir+"/gaoler.toml", fmt.Sprintf("[daemon]\nstate_directory = %q\nfirewall = \"none\"\n[defaults]\nfindtime = \"30d\"\n[jail.sshd]\nenabled = true\n", dir))
	if err != nil {
		b.Fatal(err)
	}
	// Checkpoints are measured apart (see the catch-up benchmark): none here.
	d := &Daemon{opts: Options{CheckpointInterval: time.Hour}, cfg: cfg, log: NewTextLogger(io.Discard), notify: func(string) {}, pid: "1",
		lastSave: time.Now(), now: time.Now}
	d.fw = firewall.NewNone()
	d.engine = jails.NewEngine(d.fw, eventSink{d}, time.Now)
	d.configureJails(cfg)
	const n = 100_000
	start := time.Now().Add(-24 * time.Hour)
	entries := make([]journal.Entry, n)
	for i := range entries {
		a := i % 20000
		msg := fmt.Sprintf("Failed password for root from 198.18.%d.%d port %d ssh2", a/256, a%256, 1024+i%60000)
		entries[i] = *journal.NewEntry("", uint64(start.Add(time.Duration(i)*50*time.Millisecond).UnixMicro()), msg,
			map[string]string{"_UID": "0", "_COMM": "sshd", "_SYSTEMD_UNIT": "ssh.service", "_PID": "1234"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < n; k += journal.BatchSize {
			d.handleBatch(entries[k:min(k+journal.BatchSize, n)])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
