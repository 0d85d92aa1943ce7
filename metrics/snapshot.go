package metrics

import (
	"time"

	"github.com/gaoler/gaoler/events"
)

// Snapshot is what the daemon knows at one scrape.
type Snapshot struct {
	Jails      []Jail
	Reader     Reader
	Checkpoint Checkpoint
	// Subscribers are the daemon's event subscribers (the journal log, the bus, each action, the fleet)
	// with their queues and drops.
	Subscribers []events.Stats
	Actions     []Action
	Fleet       *Fleet // nil: fleet mode is off
}

// Jail is one jail's figures.
type Jail struct {
	Name string
	// FailuresByRule counts the failures the jail counted, by the filter rule that matched.
	FailuresByRule map[string]uint64
	// Bans counts new bans by origin ("filter", "manual", "peer"); Restored counts bans re-installed
	// at start or after a flushed table (not new bans).
	Bans     map[string]uint64
	Restored uint64
	// Unbans counts lifted bans by reason ("expired", "manual", "unban-all", "jail removed", "peer").
	Unbans  map[string]uint64
	Active  int // bans in the kernel now
	Tracked int // failure windows kept
	// Packets and Bytes are what the jail's firewall rules matched (and so rejected or dropped);
	// CountersOK is false when they could not be read (firewall "none", or an error).
	Packets, Bytes uint64
	CountersOK     bool
}

// Reader is the journal reader's state.
type Reader struct {
	// LastEntry is the timestamp of the last entry the daemon processed (zero: none yet); the lag is
	// the scrape's time minus it.
	LastEntry time.Time
	Mode      string // "idle", "hot" or "stopped"
}

// Checkpoint is the state file's health.
type Checkpoint struct {
	LastSaved time.Time // zero: never saved by this process
	Failures  uint64    // checkpoints that could not be written
}

// Action is one configured action's outcomes.
type Action struct {
	Name                            string
	Sent, Failed, Dropped, TimedOut uint64
}

// Fleet is fleet mode's state.
type Fleet struct {
	Connected bool
	Peers     int
	Applied   uint64 // peers' bans applied here
	Published uint64 // local bans published
	Refused   uint64 // peers' bans refused (ignored here, rate-limited, malformed)
	Outbox    int    // local bans waiting to be published
}

// Source gives the daemon's Snapshot; it is called once per scrape, from the HTTP server's goroutine.
type Source interface {
	MetricsSnapshot() Snapshot
}

// SourceFunc adapts a function to Source.
type SourceFunc func() Snapshot

// MetricsSnapshot calls f.
func (f SourceFunc) MetricsSnapshot() Snapshot { return f() }
