package daemon

import (
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/metrics"
)

// serveMetrics serves the Prometheus endpoint on the socket systemd passed (gaolerd-metrics.socket),
// if it passed one, until the daemon stops.
func (d *Daemon) serveMetrics() {
	ln, err := metrics.Listener()
	if err != nil {
		d.log.Warnf("%v; serving no metrics", err)
		return
	}
	if ln == nil {
		return // the socket is not enabled: the endpoint is off
	}
	reg := metrics.NewRegistry(d.metricsSource(), d.opts.Version)
	go func() {
		if err := metrics.Serve(d.ctx, ln, reg); err != nil {
			d.log.Errorf("%v", err)
		}
	}()
	d.log.Event("", sdjournal.PriInfo, nil, "metrics: serving %s/metrics", ln.Addr())
}

// metricsSource takes each scrape's Snapshot on the main loop.
func (d *Daemon) metricsSource() metrics.Source {
	return metrics.SourceFunc(func() metrics.Snapshot {
		var s metrics.Snapshot
		d.do(func() { s = d.metricsSnapshot() }) // while stopping: an empty scrape
		return s
	})
}

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
	s.Checkpoint.LastSaved = d.saver.saved()
	s.Checkpoint.Failures = d.saver.failures()
	d.tally.Fill(&s)
	s.Subscribers = d.hub.Stats()
	for _, fill := range d.metricsFills {
		fill(&s)
	}
	return s
}
