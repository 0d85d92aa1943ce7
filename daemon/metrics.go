package daemon

import (
	"time"

	"github.com/gaoler/gaoler/metrics"
)

// metricsSnapshot takes the figures of a scrape. The caller holds mu.
func (d *Daemon) metricsSnapshot() metrics.Snapshot {
	var s metrics.Snapshot
	counters, cerr := d.fw.Counters()
	for _, j := range d.active {
		c, err := d.engine.Counters(j.name)
		if err != nil {
			continue
		}
		mj := metrics.Jail{
			Name: j.name, FailuresByRule: c.FailuresByRule,
			Active: c.Active, Tracked: c.Tracked,
		}
		if cerr == nil {
			fc := counters[j.name]
			mj.Packets, mj.Bytes, mj.CountersOK = fc.Packets, fc.Bytes, true
		}
		s.Jails = append(s.Jails, mj)
	}
	if d.realtimeUsec > 0 {
		s.Reader.LastEntry = time.UnixMicro(int64(d.realtimeUsec))
	}
	s.Reader.Mode = "stopped"
	if d.reader != nil {
		s.Reader.Mode = "idle"
		if hot, _ := d.reader.Mode(); hot {
			s.Reader.Mode = "hot"
		}
	}
	s.Checkpoint.LastSaved = d.lastSave
	s.Checkpoint.Failures = d.saver.failures()
	return s
}
