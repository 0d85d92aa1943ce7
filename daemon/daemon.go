// Package daemon wires gaolerd together: it loads the config, builds the firewall, restores the
// checkpoint, follows the journal, feeds the jail engine and serves the bus. One mutex guards the
// engine and the daemon's state: the journal reader's goroutine takes it to handle each batch, and the
// main loop holds it for everything else (bus requests, signals, timers), which reach it through
// channels. The engine itself holds no locks.
//
// # Events
//
// Every ban and unban the engine decides becomes an events.Event (jail, prefix, times, count, origin,
// rule, and the journal entries behind it) published on the daemon's events.Hub once the firewall's
// Flush has put the change in the kernel, after the daemon lets go of its mutex. A Flush that fails
// announces nothing; the change is tried again within a second and announced when the kernel has it.
// The journal log (the ban and unban entries) and the bus's Banned and Unbanned signals are the Hub's
// first two subscribers; each subscriber has its own bounded queue and goroutine, so a slow one slows
// only itself. Restored bans (re-installed at start, after the table was flushed, or re-derived from
// entries read again after a crash) are published with events.OriginRestored: they were announced when
// they were new, so the journal log and the signals skip them, as actions and the fleet must.
//
// # Plugins
//
// A capability that runs with the daemon (actions, metrics, the fleet) is a Plugin in
// Options.Plugins: its Start subscribes to the Hub and starts goroutines through the Host it is given,
// and its goroutines call back through the Host: Ban applies a ban with an origin of its own (a fleet
// peer's), Unban lifts one, Bans and Stats read the running bans and the jails' counters, HubStats the
// subscribers' queues. At stop the Hub delivers what is queued, then the plugins' context is cancelled
// and their goroutines are waited for. A plugin's package defines the interface it needs of the Host
// and does not import this package.
//
// # Files
//
// daemon.go holds the types; lifecycle.go starting and stopping (Run, setUp, stop); batch.go the
// journal reader and the handling of its batches; timers.go the main loop and what it does when
// something is due; reload.go the reload; checkpoint.go the checkpoint file and its saving;
// announce.go how decisions reach the Hub; plugin.go the plugins' Host; backend.go the bus's view.
package daemon

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/journal"
	"github.com/gaoler/gaoler/metrics"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	Version    string
	// Log receives gaolerd's events; nil logs to the journal (or stderr without one).
	Log *Logger
	// Reload delivers reload requests (SIGHUP); nil means none.
	Reload <-chan os.Signal
	// CheckpointInterval is the most often the checkpoint is written while entries flow (default 1s).
	CheckpointInterval time.Duration
	// Plugins are the capabilities that run with the daemon (actions, metrics, the fleet); see Plugin.
	Plugins []Plugin
	// FleetStatus, when set, gives fleet mode's status to the bus (false: no fleet); it must not wait
	// on the network or on the daemon.
	FleetStatus func() (bus.FleetReply, bool)

	// The seams, for tests; each nil or zero means the real thing.

	// Firewall is the packet filter, instead of the one the configuration's [daemon] firewall names.
	Firewall Firewall
	// Now is the clock of the jails' decisions and of the daemon's bookkeeping (what is due when,
	// which bans ran out); the main loop's timers still wait in real time. Default time.Now.
	Now func() time.Time
	// Notify receives the sd_notify(3) states (READY=1, STATUS=..., WATCHDOG=1, ...). Default: they go
	// to systemd, which is a no-op without NOTIFY_SOCKET.
	Notify func(state string)
	// OpenJournal opens the journal reader, instead of journal.Open. With it the entries behind a ban
	// are not looked up in the journal: they keep what the reader gave.
	OpenJournal func(journal.Options) (JournalReader, error)
	// Bus connects to the bus the daemon serves, instead of the system bus (bus.SystemBus).
	Bus func() (*dbus.Conn, error)
}

// JournalReader is what the daemon needs of its journal reader; *journal.Reader implements it, and a
// test passes a fake through Options.OpenJournal. See journal.Reader for what each method means.
type JournalReader interface {
	Run(ctx context.Context, fn func(batch []journal.Entry) (lastFailureUsec uint64)) error
	Mode() (hot bool, left time.Duration)
	Busy() time.Duration
	SetNearBan(near, always bool)
	Close() error
}

// ConfigError is returned by Run when the configuration cannot be loaded at start; gaolerd exits 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Firewall is what the daemon needs of a packet filter; firewall.NFTables and firewall.None implement
// it, a test passes a fake in Options.Firewall. The engine sees only its jails.Firewall part.
type Firewall interface {
	jails.Firewall
	Setup(jails []firewall.JailRules) error
	Flush() error
	Elements(jail string) ([]firewall.Element, error)
	Counters() (map[string]firewall.Counter, error)
	Heal(ctx context.Context, restored func(n int))
	Close() error
}

// configJail is a jail of the configuration.
type configJail = config.Jail

// activeJail is an enabled jail as the main loop routes entries to it.
type activeJail struct {
	name   string
	match  journal.Match
	failed bool // a failure in the batch being handled: the bus hears of the jail's counters after it
}

type banKey struct {
	jail   string
	prefix string
}

// Daemon is a running gaolerd. Its fields are guarded by mu unless noted: the main loop holds mu except
// while it waits for something to do, and the reader goroutine takes it to handle a batch. Handling
// batches on the reader's own goroutine, rather than passing each one to the main loop and waiting
// for the answer, saves two goroutine switches per batch, which woke other threads (a quarter of the
// context switches of a catch-up).
type Daemon struct {
	mu     sync.Mutex
	opts   Options
	log    *Logger
	notify func(string)
	cfg    *config.Config
	fw     Firewall
	now    func() time.Time
	engine *jails.Engine
	bus    *bus.Server
	pid    string
	start  time.Time

	active     []activeJail
	matchTerms string // the union of the active jails' matches, to see whether a reload changes it

	ctx          context.Context
	reader       JournalReader // read by the bus goroutines through readerMode
	readerCancel context.CancelFunc
	readerDone   chan error
	readerRetry  time.Time

	reqs  chan func()
	kick  chan struct{} // the reader's note that something is due before armed
	armed time.Time     // when the main loop's timer fires
	// durable is the checkpoint the request running now took for its caller (saveForReply), which do
	// waits for off the lock.
	durable uint64
	// lists lets one bus reply listing bans be built at a time (see banList).
	lists chan struct{}

	cursor       string
	realtimeUsec uint64
	dirty        bool
	lastSave     time.Time
	saver        *saver          // writes the checkpoints
	saveEvery    time.Duration   // CheckpointInterval, or longer while a backlog is read
	preCrash     map[banKey]bool // bans in the kernel that the checkpoint did not know: re-derived, not new

	// What the engine decided, on its way to the Hub (see announce.go).
	hub         *events.Hub
	pending     []events.Event // decided, not in the kernel yet
	flushFailed bool           // the last Flush failed: pending waits for the next commit
	outbox      []events.Event // in the kernel, published by unlock
	notes       []func()       // journal entries of failures and trusts, written by unlock
	pubMu       sync.Mutex     // taken before mu is let go with an outbox, held while publishing it
	tally       *metrics.Tally // bans and unbans counted for the metrics endpoint, a Hub subscriber
	// metricsFills add the plugins' parts to each scrape (Host.AddMetrics); set before the main loop runs.
	metricsFills []func(*metrics.Snapshot)

	running      atomic.Pointer[config.Config] // cfg, for the plugins' goroutines
	pluginCancel context.CancelFunc
	pluginWG     sync.WaitGroup

	finder      *journal.Finder // completes the entries behind a ban (announce.go); nil until needed
	finderErr   error           // why it could not be opened, logged once
	lookups     ration          // of the finder's lookups
	failures    minuteCounter
	failureLog  failureLog
	batchNow    time.Time // when the batch being handled arrived: the clock of its failure entries
	lastStatus  string
	stoppedBans int           // bans left in the kernel at stop, for the Stopped entry
	watchdog    time.Duration // WATCHDOG_USEC/2: how often to ping
	lastPing    time.Time
}
