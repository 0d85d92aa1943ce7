package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// desc builds a gaoler_ metric's description.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gaoler_"+name, help, labels, nil)
}

var (
	descFailures = desc("failures_total", "Failures the jail counted, by the filter rule that matched.", "jail", "rule")
	descBans     = desc("bans_total", "New bans, by origin (filter, manual, peer).", "jail", "origin")
	descRestored = desc("bans_restored_total", "Bans re-installed at start or after the table was flushed (not new bans).", "jail")
	descUnbans   = desc("unbans_total", "Bans lifted, by reason (expired, manual, unban-all, jail removed, peer).", "jail", "reason")
	descActive   = desc("bans_active", "Bans in the kernel now.", "jail")
	descTracked  = desc("tracked_windows", "Addresses (or prefixes) whose failures are being counted.", "jail")
	descPackets  = desc("blocked_packets_total", "Packets the jail's firewall rules matched and rejected or dropped.", "jail")
	descBytes    = desc("blocked_bytes_total", "Bytes of the packets the jail's firewall rules matched.", "jail")

	descLag      = desc("journal_lag_seconds", "Now minus the timestamp of the last journal entry processed.")
	descLastUsec = desc("journal_last_entry_timestamp_seconds", "Timestamp of the last journal entry processed.")
	descMode     = desc("journal_reader_mode", "1 for the journal reader's current mode (idle, hot, stopped).", "mode")
	descCpAge    = desc("checkpoint_age_seconds", "Seconds since the checkpoint was last written.")
	descCpFail   = desc("checkpoint_failures_total", "Checkpoints that could not be written.")

	descQueued  = desc("events_queued", "Events waiting for a subscriber (journal log, bus, actions, fleet).", "subscriber")
	descHandled = desc("events_handled_total", "Events handed to a subscriber.", "subscriber")
	descDropped = desc("events_dropped_total", "Events dropped because a subscriber's queue was full.", "subscriber")

	descActSent     = desc("action_sent_total", "Action runs that succeeded.", "action")
	descActFailed   = desc("action_failed_total", "Action runs that failed (after their retries).", "action")
	descActDropped  = desc("action_dropped_total", "Events an action dropped (queue full, budget or rate limit).", "action")
	descActTimedOut = desc("action_timeouts_total", "Action runs killed at their timeout.", "action")

	descFleetConnected = desc("fleet_connected", "1 while connected to the fleet's NATS servers.")
	descFleetPeers     = desc("fleet_peers", "Peers whose bans are watched.")
	descFleetApplied   = desc("fleet_applied_total", "Peers' bans applied here.")
	descFleetPublished = desc("fleet_published_total", "Local bans published to the fleet.")
	descFleetRefused   = desc("fleet_refused_total", "Peers' bans refused (ignored here, rate-limited or malformed).")
	descFleetOutbox    = desc("fleet_outbox", "Local bans waiting to be published.")
)

var readerModes = []string{"idle", "hot", "stopped"}

// collector turns a Snapshot into metrics at each scrape.
type collector struct {
	src Source
	now func() time.Time
}

// Describe sends nothing: the collector is unchecked, since which label values exist (jails, rules,
// actions) changes with the configuration.
func (c collector) Describe(chan<- *prometheus.Desc) {}

// Collect takes one Snapshot and sends its figures.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.MetricsSnapshot()
	now := c.now()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, j := range s.Jails {
		for rule, n := range j.FailuresByRule {
			counter(descFailures, n, j.Name, rule)
		}
		for origin, n := range j.Bans {
			counter(descBans, n, j.Name, origin)
		}
		counter(descRestored, j.Restored, j.Name)
		for reason, n := range j.Unbans {
			counter(descUnbans, n, j.Name, reason)
		}
		gauge(descActive, float64(j.Active), j.Name)
		gauge(descTracked, float64(j.Tracked), j.Name)
		if j.CountersOK {
			counter(descPackets, j.Packets, j.Name)
			counter(descBytes, j.Bytes, j.Name)
		}
	}
	if !s.Reader.LastEntry.IsZero() {
		lag := now.Sub(s.Reader.LastEntry).Seconds()
		if lag < 0 {
			lag = 0 // an entry stamped by a clock ahead of ours
		}
		gauge(descLag, lag)
		gauge(descLastUsec, float64(s.Reader.LastEntry.UnixMicro())/1e6)
	}
	for _, m := range readerModes {
		v := 0.0
		if s.Reader.Mode == m {
			v = 1
		}
		gauge(descMode, v, m)
	}
	if !s.Checkpoint.LastSaved.IsZero() {
		gauge(descCpAge, now.Sub(s.Checkpoint.LastSaved).Seconds())
	}
	counter(descCpFail, s.Checkpoint.Failures)
	for _, sub := range s.Subscribers {
		gauge(descQueued, float64(sub.Queued), sub.Name)
		counter(descHandled, sub.Handled, sub.Name)
		counter(descDropped, sub.Dropped, sub.Name)
	}
	for _, a := range s.Actions {
		counter(descActSent, a.Sent, a.Name)
		counter(descActFailed, a.Failed, a.Name)
		counter(descActDropped, a.Dropped, a.Name)
		counter(descActTimedOut, a.TimedOut, a.Name)
	}
	if f := s.Fleet; f != nil {
		connected := 0.0
		if f.Connected {
			connected = 1
		}
		gauge(descFleetConnected, connected)
		gauge(descFleetPeers, float64(f.Peers))
		counter(descFleetApplied, f.Applied)
		counter(descFleetPublished, f.Published)
		counter(descFleetRefused, f.Refused)
		gauge(descFleetOutbox, float64(f.Outbox))
	}
}

// NewRegistry returns a registry holding gaoler's metrics from src, the process's (CPU, memory, file
// descriptors) and the Go runtime's, and gaoler_build_info with version.
func NewRegistry(src Source, version string) *prometheus.Registry {
	return newRegistry(src, version, time.Now)
}

// newRegistry is NewRegistry with the clock that the lag and the checkpoint's age are measured by.
func newRegistry(src Source, version string, now func() time.Time) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collector{src: src, now: now})
	r.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.MustRegister(collectors.NewGoCollector())
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gaoler_build_info", Help: "Always 1; the version label says which gaolerd runs.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	return r
}
