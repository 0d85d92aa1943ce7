// Package metrics serves gaolerd's figures to Prometheus: failures, bans and unbans per jail, the
// packets and bytes each jail's rules dropped, how far behind the journal the reader is, the
// checkpoint's age, the actions' and the fleet's outcomes, and the process's CPU and memory.
//
// Every figure comes from a Snapshot the daemon fills from counters it keeps anyway (and one netlink
// dump of the jails' rules for the packet counters), so a scrape costs the same with 10 bans or
// 100,000: no set is walked element by element. The format is written by
// github.com/prometheus/client_golang, which negotiates OpenMetrics or the Prometheus text format with
// the scraper.
//
// The endpoint listens on a socket that systemd holds (gaolerd-metrics.socket, passed to gaolerd with
// FileDescriptorName=metrics), so the hardened unit needs no AF_INET of its own to bind and keeps its
// exposure; `gaoler metrics` prints the same text over the bus, for node_exporter's textfile
// collector.
//
// It does not own the counters (the daemon, the engine, the actions and the fleet do), nor decide
// anything: it only reports.
package metrics
