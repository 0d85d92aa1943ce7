// Package fleet shares bans between hosts over NATS JetStream: a ban on one host protects every host.
//
// Each host owns one JetStream key-value bucket, gaoler-<host>, replicated by the cluster. A key is a
// jail and an address ("sshd.192.0.2.7", "sshd.2001_db8__7" with ':' written '_'); its value says
// who banned it, how often, why and for how long (Value); the key is written with a per-key TTL (the
// ban's remaining time, ADR-43/48, nats-server 2.12+), so the server, not the origin's clock, ends it,
// and leaves an expiry marker that watchers see. A manual unban purges the key.
//
// Publishing is an events.Hub subscriber: a local ban is in the kernel before the fleet hears of it,
// and Handle only puts it in the outbox, which is saved in the state directory and published by a
// goroutine of its own whenever the cluster is reachable. Nothing local ever waits on NATS. At every
// connection the outbox is reconciled with the daemon's running bans, so nothing is lost to a crash.
//
// Each host watches its peers' buckets and applies their bans through the daemon (Daemon.ApplyPeerBan,
// origin peer), which never publishes them again and lets its own ignoreip/ignoreself win. A peer's
// ban is capped at max_bantime, a peer that floods is rate-limited, and after every (re)connection the
// peers' buckets are read whole, so a ban lifted while this host was away is lifted here too.
//
// The package does not own the ban state (the daemon does), the firewall, or the NATS accounts; the
// account layout it expects is in README.md ("Fleet mode") and gaoler.toml(5).
package fleet
