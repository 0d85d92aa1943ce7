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
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	sdjournal "github.com/coreos/go-systemd/v22/journal"

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

// activeJail is an enabled jail as the main loop routes entries to it.
type configJail = config.Jail

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
	reader       *journal.Reader // read by the bus goroutines through readerMode
	readerCancel context.CancelFunc
	readerDone   chan error
	readerRetry  time.Time

	reqs  chan func()
	kick  chan struct{} // the reader's note that something is due before armed
	armed time.Time     // when the main loop's timer fires

	cursor       string
	realtimeUsec uint64
	dirty        bool
	lastSave     time.Time
	saver        *saver          // writes the checkpoints
	saveEvery    time.Duration   // CheckpointInterval, or longer while a backlog is read
	preCrash     map[banKey]bool // bans in the kernel that the checkpoint did not know: re-derived, not new

	// What the engine decided, on its way to the Hub (see announce.go).
	hub         *events.Hub
	recent      recentBans     // the latest bans and unbans, for gaoler why (why.go); a Hub subscriber
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
	logindOn    bool          // following logind's sessions (trust.go)
	lastPing    time.Time
}

// Run starts gaolerd and blocks until ctx is cancelled (a clean stop: state saved, STOPPING=1) or a
// fatal error. A configuration that does not load returns a *ConfigError.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = NewLogger(os.Stderr)
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(s string) {
			// A no-op without NOTIFY_SOCKET; a socket that refuses the state leaves nothing to do.
			_, _ = sddaemon.SdNotify(false, s)
		}
	}
	d0 := o.CheckpointInterval
	d := &Daemon{
		opts:       o,
		log:        o.Log,
		notify:     o.Notify,
		now:        o.Now,
		pid:        strconv.Itoa(os.Getpid()),
		start:      o.Now(),
		ctx:        ctx,
		reqs:       make(chan func()),
		kick:       make(chan struct{}, 1),
		readerDone: make(chan error, 1),
		preCrash:   map[banKey]bool{},
		tally:      metrics.NewTally(),
		saveEvery:  d0,
		hub:        events.NewHub(),
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		d.logConfigError(err)
		return &ConfigError{err}
	}
	for _, w := range cfg.Warnings {
		d.log.Warnf("%s", w)
	}
	d.cfg = cfg
	d.running.Store(cfg)
	d.mu.Lock() // released by loop while it waits
	if err := d.setUp(); err != nil {
		d.stopReader()
		if d.saver != nil {
			d.saver.close()
		}
		d.unlock()
		d.shutDown()
		return err
	}
	err = d.loop(ctx)
	d.shutDown()
	d.log.Event(events.MsgStopped, sdjournal.PriInfo, nil, "Stopped: %d bans stay in the kernel until they expire", d.stoppedBans)
	return err
}

// shutDown delivers the last events (the Hub drains every subscriber's queue), stops the plugins
// and closes the firewall. It runs without mu: a subscriber may call the Host, which answers
// ErrStopping.
func (d *Daemon) shutDown() {
	d.hub.Close()
	d.stopPlugins()
	if d.finder != nil {
		d.finder.Close() // read only: nothing to lose
	}
	if d.fw != nil {
		if err := d.fw.Close(); err != nil {
			d.log.Errorf("firewall: %v", err)
		}
	}
}

// setUp builds the firewall, restores the checkpoint into the engine and the kernel, opens the
// journal and starts the bus: everything READY=1 promises.
func (d *Daemon) setUp() error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.Daemon.StateDirectory, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	d.saver = newSaver(cfg.Daemon.StateDirectory, func(err error) { d.log.Errorf("%v", err) },
		func(msg string) { d.log.Infof("%s", msg) })
	switch {
	case d.opts.Firewall != nil:
		d.fw = d.opts.Firewall
	case cfg.Daemon.Firewall == "none":
		d.fw = firewall.NewNone()
	default:
		// Heal's errors (a rebuild that failed) are logged; it tries again at its next check.
		fw, err := firewall.NewNFTables(cfg.Daemon.Table, firewall.WithWarn(func(err error) { d.log.Warnf("%v", err) }))
		if err != nil {
			return err // "nftables: ..."
		}
		d.fw = fw
	}
	if err := d.fw.Setup(firewallRules(cfg)); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	// What the kernel holds from before this start (Setup adopted it): among it, bans a crash left
	// behind that the checkpoint had not recorded yet. Re-reading the entries past the checkpoint
	// re-derives them; those are restorations, not new bans.
	kernel := map[banKey]bool{}
	for _, j := range cfg.Enabled() {
		els, err := d.fw.Elements(j.Name)
		if err != nil {
			d.log.Warnf("%v; a ban of jail %s that a crash left unrecorded may be announced again", err, j.Name)
			continue
		}
		for _, el := range els {
			kernel[banKey{j.Name, el.Prefix.String()}] = true
		}
	}

	d.engine = jails.NewEngine(d.fw, eventSink{d}, d.now, jails.WithNotice(d.engineNotice), jails.WithTrustEvents(trustSink{d}))
	d.configureJails(cfg)

	cp, err := LoadCheckpoint(cfg.Daemon.StateDirectory)
	var pos journal.Position
	switch {
	case err == nil:
		if rerr := d.engine.Restore(cp.Engine); rerr != nil {
			d.log.Errorf("checkpoint: restoring jail state: %v; starting with empty windows", rerr)
		}
		pos = journal.Position{Cursor: cp.Cursor, RealtimeUsec: cp.RealtimeUsec}
		d.cursor, d.realtimeUsec = cp.Cursor, cp.RealtimeUsec
		d.saver.loaded(cp.SavedAt)
	case errors.Is(err, ErrNoCheckpoint):
	default:
		d.log.Errorf("%v", err)
	}
	restored := d.engine.Bans("")
	for _, b := range restored {
		delete(kernel, banKey{b.Jail, b.Prefix.String()})
	}
	d.preCrash = kernel
	if err := d.fw.Flush(); err != nil {
		return fmt.Errorf("firewall: restoring bans: %w", err)
	}
	d.log.Event(events.MsgFirewallRestored, sdjournal.PriNotice, map[string]string{events.FieldCount: strconv.Itoa(len(restored))},
		"Firewall restored: %d bans", len(restored))
	d.announceRestored(restored) // published at the first unlock, when every subscriber is in

	// The subscribers go in before anything is published: the journal log, the metrics, the bus
	// signals, then the plugins.
	d.hub.Subscribe("journal", queueSize, logEvents(d.log))
	d.hub.Subscribe("metrics", queueSize, d.tally.Observe)
	d.hub.Subscribe("why", queueSize, d.recent.observe)
	// The bus is optional: losing it (dbus restarting, or stopping before gaolerd at shutdown) is a
	// notice, not a warning; protection goes on without it.
	d.bus = bus.NewServer(backend{d}, bus.WithWarn(func(msg string) {
		d.log.Event("", sdjournal.PriNotice, nil, "bus: %s", msg)
	}))
	d.hub.Subscribe("bus", queueSize, signalEvents(d.bus))
	d.startPlugins()

	if err := d.startReader(pos); err != nil {
		return err // "journal: ..."
	}
	go d.bus.Serve(d.ctx, bus.SystemBus) // honours DBUS_SYSTEM_BUS_ADDRESS
	d.serveMetrics()
	d.startLogind()
	go d.fw.Heal(d.ctx, func(n int) {
		// A rebuild puts back every running ban. do fails only when the daemon is stopping: there is
		// no one left to tell then.
		_ = d.do(func() { d.announceRestored(d.engine.Bans("")) })
		d.log.Event(events.MsgFirewallRestored, sdjournal.PriNotice, map[string]string{events.FieldCount: strconv.Itoa(n)},
			"Firewall restored: %d bans (the table had been changed or removed)", n)
	})
	if wd, err := sddaemon.SdWatchdogEnabled(false); err == nil && wd > 0 {
		d.watchdog = wd / 2
	}
	d.log.Event(events.MsgStarted, sdjournal.PriInfo, nil, "Started: %s", d.summary())
	d.notify(sddaemon.SdNotifyReady)
	d.updateStatus()
	return nil
}

// configureJails makes the engine's jails those enabled in cfg, and the routing table to match.
func (d *Daemon) configureJails(cfg *config.Config) {
	want := map[string]bool{}
	d.active = d.active[:0]
	var terms []string
	for _, j := range cfg.Enabled() {
		m, err := journal.ParseMatch(j.JournalMatch)
		if err != nil { // config validated it; keep the jail out rather than route wrongly
			d.log.Errorf("jail %s: journal_match: %v", j.Name, err)
			continue
		}
		want[j.Name] = true
		if err := d.engine.SetJail(j.Name, j.Filter, j.Settings); err != nil {
			// The jail is set, without the host's own addresses in its ignore list.
			d.log.Warnf("%v; ignoreself covers none of this host's addresses until the next reload", err)
		}
		d.active = append(d.active, activeJail{name: j.Name, match: m})
		terms = append(terms, strings.Join(j.JournalMatch, " "))
	}
	if d.cfg != nil {
		for _, j := range d.cfg.Jails {
			if !want[j.Name] {
				d.engine.RemoveJail(j.Name)
			}
		}
	}
	d.matchTerms = strings.Join(terms, " + ")
}

// firewallRules turns the enabled jails into the firewall's layout.
func firewallRules(cfg *config.Config) []firewall.JailRules {
	var rules []firewall.JailRules
	for _, j := range cfg.Enabled() {
		r := firewall.JailRules{Name: j.Name, Protocol: j.Protocol, BlockType: j.BlockType, Hooks: j.Hooks}
		for _, p := range j.PortNumbers {
			r.Ports = append(r.Ports, firewall.PortRange{From: p.From, To: p.To})
		}
		rules = append(rules, r)
	}
	return rules
}

// longestFindTime is how far back a first start reads, so an attack under way is caught.
func longestFindTime(cfg *config.Config) time.Duration {
	var longest time.Duration
	for _, j := range cfg.Enabled() {
		if j.Settings.FindTime > longest {
			longest = j.Settings.FindTime
		}
	}
	return longest
}

// startReader opens the journal at pos (after the entry at pos.Cursor) and runs it on its own
// goroutine, which handles each batch itself, holding mu.
func (d *Daemon) startReader(pos journal.Position) error {
	var matches []journal.Match
	for _, j := range d.active {
		matches = append(matches, j.match)
	}
	since := d.now().Add(-longestFindTime(d.cfg))
	r, err := journal.Open(journal.Options{
		Directory: d.cfg.Journal.Directory,
		Matches:   matches,
		Start:     pos,
		SinceUsec: uint64(since.UnixMicro()),
		Hold:      d.cfg.Journal.HotTime,
		Warn:      func(msg string) { d.log.Warnf("journal: %s", msg) },
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(d.ctx)
	r.SetNearBan(d.engine.NearBan())
	d.reader, d.readerCancel = r, cancel
	done := d.readerDone
	go func() {
		err := r.Run(ctx, func(batch []journal.Entry) uint64 {
			d.mu.Lock()
			defer d.unlock()
			if ctx.Err() != nil {
				return 0 // stopped: the next reader reads these again, after the last processed cursor
			}
			last := d.handleBatch(batch)
			r.SetNearBan(d.engine.NearBan())
			if now := d.now(); d.nextTick(now).Before(d.armed) {
				select { // the main loop sleeps past something this batch made due
				case d.kick <- struct{}{}:
				default:
				}
			}
			return last
		})
		r.Close()
		if ctx.Err() != nil {
			err = nil
		}
		done <- err
	}()
	return nil
}

// stopReader stops the reader goroutine and waits for it. Entries it had read but not handled are
// read again by the next reader, which starts at the last processed cursor. The caller holds mu; it
// is let go while waiting, for a reader that waits for it with a batch (the batch is not handled).
func (d *Daemon) stopReader() {
	if d.readerCancel == nil {
		return
	}
	d.readerCancel()
	d.unlock()
	<-d.readerDone
	d.mu.Lock()
	d.readerCancel = nil
}

// loop is the main loop: everything but the journal's batches (bus requests, reloads, ticks) happens
// here. It is called holding mu and holds it except while it waits.
func (d *Daemon) loop(ctx context.Context) error {
	// No fixed ticker: the loop sleeps until the next thing that is due (a ban's end, a checkpoint,
	// a watchdog ping), so an idle daemon wakes rarely. The reader kicks it when a batch makes
	// something due sooner.
	now := d.now()
	d.armed = d.nextTick(now)
	timer := time.NewTimer(d.armed.Sub(now))
	defer timer.Stop()
	for {
		d.unlock()
		var fn func()
		fired := false
		select {
		case <-ctx.Done():
			d.mu.Lock()
			return d.stop()
		case fn = <-d.reqs:
		case <-d.opts.Reload:
			fn = func() { _ = d.reload() } // a failed reload is logged there, and the running config stays
		case err := <-d.readerDone:
			fn = func() {
				d.readerCancel = nil
				d.log.Errorf("journal reader stopped: %v; reopening at the last processed entry", err)
				d.readerRetry = d.now().Add(time.Second)
			}
		case <-d.kick:
		case <-timer.C:
			fired = true
		}
		d.mu.Lock()
		if fn != nil {
			fn()
		}
		if fired {
			d.tick(d.now())
		}
		timer.Stop()
		now := d.now()
		d.armed = d.nextTick(now)
		timer.Reset(d.armed.Sub(now))
	}
}

// maxSleep is the longest the main loop sleeps: STATUS= ("failures in the last hour") and the
// engine's housekeeping (old windows, history) are refreshed at least this often.
const maxSleep = time.Minute

// nextTick returns when tick should run next: the earliest of a due checkpoint, the end of the next
// running ban, the next watchdog ping, a reader to reopen and, while the reader is hot or failures
// wait to be summed up, a second from now (STATUS= shows the hot countdown).
func (d *Daemon) nextTick(now time.Time) time.Time {
	next := now.Add(maxSleep)
	consider := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if d.dirty {
		consider(d.lastSave.Add(d.saveEvery))
	}
	if t, ok := d.engine.NextExpiry(); ok {
		consider(t)
	}
	if d.watchdog > 0 {
		consider(d.lastPing.Add(d.watchdog))
	}
	if d.readerCancel == nil && !d.readerRetry.IsZero() {
		consider(d.readerRetry)
	}
	if d.failureLog.suppressed > 0 || d.flushFailed {
		consider(now.Add(time.Second))
	}
	if d.reader != nil {
		if hot, _ := d.reader.Mode(); hot {
			consider(now.Add(time.Second))
		}
	}
	// Never spin: something due but not doable (a hung reader withholding the watchdog ping) is
	// looked at again shortly.
	if floor := now.Add(50 * time.Millisecond); next.Before(floor) {
		next = floor
	}
	return next
}

// handleBatch routes each entry to the jails whose matches it satisfies, sends the resulting bans
// to the kernel, and records the batch's last cursor. It returns the timestamp of the newest failure
// (for the reader's hot mode).
func (d *Daemon) handleBatch(batch []journal.Entry) uint64 {
	if len(batch) == 0 {
		return 0
	}
	var lastFailure uint64
	now := d.now()
	d.batchNow = now
	for i := range batch {
		e := &batch[i]
		if e.Field("_PID") == d.pid || e.Field("_COMM") == "gaolerd" {
			continue // the daemon never counts its own entries
		}
		entry := events.Entry{Time: time.UnixMicro(int64(e.Realtime)), Message: e.Message, Cursor: e.Cursor, PID: -1}
		for k := range d.active {
			j := &d.active[k]
			if !j.match.Satisfied(e) {
				continue
			}
			if entry.PID < 0 {
				// A _PID that is not a number (no sender sets it: journald does) is 0, unknown.
				entry.PID, _ = strconv.Atoi(e.Field("_PID"))
			}
			if d.engine.Handle(j.name, entry) {
				j.failed = true
				if e.Realtime > lastFailure {
					lastFailure = e.Realtime
				}
				d.failures.add(now)
			}
		}
	}
	// Retire what is over: running bans whose time ran out, and bans a backlog decided that the
	// entries read since have outlived. Done per batch, a catch-up keeps only the bans of the last
	// bantime in memory instead of every ban it ever decided.
	d.engine.Expire(now)
	last := &batch[len(batch)-1]
	d.cursor = strings.Clone(last.Cursor)
	d.realtimeUsec = last.Realtime
	d.dirty = true
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	// Once per batch, not per failure: the bus coalesces its signals anyway.
	for k := range d.active {
		if j := &d.active[k]; j.failed {
			j.failed = false
			if d.bus != nil {
				d.bus.CountersChanged(j.name)
			}
		}
	}
	if len(d.preCrash) > 0 && last.Realtime >= uint64(d.start.UnixMicro()) {
		d.preCrash = nil // caught up: from here on every ban is new
	}
	// A full batch means a backlog is being read: checkpoint less often then (the state of 20,000
	// tracked addresses is ~2 MB of JSON); after a crash the entries since are simply read again.
	d.saveEvery = d.opts.CheckpointInterval
	if len(batch) == journal.BatchSize {
		d.saveEvery *= 10
	}
	if d.now().Sub(d.lastSave) >= d.saveEvery && !d.saver.busy() {
		d.save()
	}
	return lastFailure
}

// save takes the checkpoint, the last processed cursor with the state it produced, and hands it to
// the saver, which writes it on its own goroutine; it returns the checkpoint's number (see saveNow).
func (d *Daemon) save() uint64 {
	cp := &Checkpoint{Cursor: d.cursor, RealtimeUsec: d.realtimeUsec, SavedAt: d.now(), Engine: d.engine.Snapshot()}
	n := d.saver.put(cp)
	d.dirty = false
	d.lastSave = d.now()
	return n
}

// saveNow saves and waits until the checkpoint is on disk: for what an admin is told is done (a manual
// ban or unban, a reload) and at stop. A write that failed (logged by the saver) leaves the state dirty,
// to be saved again.
func (d *Daemon) saveNow() {
	if err := d.saver.wait(d.save()); err != nil {
		d.dirty = true
	}
}

// tick runs when nextTick said something is due: it retires expired bans, writes a due checkpoint,
// reopens a failed reader, pings the watchdog and refreshes STATUS=.
func (d *Daemon) tick(now time.Time) {
	if len(d.engine.Expire(now)) > 0 {
		d.dirty = true
	}
	if d.reader != nil {
		// Expired windows and manual bans and unbans change what is one failure from a ban.
		d.reader.SetNearBan(d.engine.NearBan())
	}
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	if n := d.failureLog.take(); n > 0 {
		d.log.Event("", sdjournal.PriDebug, map[string]string{events.FieldCount: strconv.Itoa(n)},
			"%d failures counted without an entry each (a backlog, or more than %d a second)", n, failureLogRate)
	}
	if d.saver.takeFailed() {
		d.dirty = true // a checkpoint could not be written: try again
	}
	if d.dirty && now.Sub(d.lastSave) >= d.saveEvery && !d.saver.busy() {
		d.save()
	}
	if d.readerCancel == nil && !d.readerRetry.IsZero() && !now.Before(d.readerRetry) {
		if err := d.startReader(journal.Position{Cursor: d.cursor, RealtimeUsec: d.realtimeUsec}); err != nil {
			d.log.Errorf("%v", err) // "journal: ..."
			d.readerRetry = now.Add(5 * time.Second)
		} else {
			d.readerRetry = time.Time{}
		}
	}
	// Ping at WATCHDOG_USEC/2 (nextTick wakes the loop then; a wake-up a hair early still pings).
	if d.watchdog > 0 && now.Sub(d.lastPing) >= d.watchdog-10*time.Millisecond && d.readerHealthy(now) {
		d.notify(sddaemon.SdNotifyWatchdog)
		d.lastPing = now
	}
	d.updateStatus()
}

// readerHealthy tells the watchdog whether the journal side works: a reader that is waiting for
// entries or reading without being stuck in the journal for a whole watchdog period, or one being
// reopened after a failure within that period. A hung reader stops the pings, and systemd restarts
// gaolerd (Restart=on-failure), which resumes at the checkpoint.
func (d *Daemon) readerHealthy(now time.Time) bool {
	if d.readerCancel != nil {
		return d.reader.Busy() < d.watchdog
	}
	return now.Before(d.readerRetry.Add(d.watchdog))
}

func (d *Daemon) updateStatus() {
	s := d.summary()
	if s != d.lastStatus {
		d.notify("STATUS=" + s)
		d.lastStatus = s
	}
}

// summary is the one line of STATUS= and of the started/reloaded entries.
func (d *Daemon) summary() string {
	bans := 0
	names := make([]string, len(d.active))
	for i, j := range d.active {
		names[i] = j.name
		if st, err := d.engine.Stats(j.name); err == nil {
			bans += st.CurrentlyBanned
		}
	}
	jailWord := "jails"
	if len(names) == 1 {
		jailWord = "jail"
	}
	return fmt.Sprintf("%d %s (%s), %d bans, %d failures in the last hour; reader %s",
		len(names), jailWord, strings.Join(names, ", "), bans, d.failures.lastHour(d.now()), d.readerMode())
}

// reload applies a new configuration without losing bans, windows or history. A configuration that
// does not load is logged with its file and line, and the running one stays.
func (d *Daemon) reload() error {
	d.notify(sddaemon.SdNotifyReloading + "\n" + sddaemon.SdNotifyMonotonicUsec())
	defer d.notify(sddaemon.SdNotifyReady)
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		d.logConfigError(err)
		return &ConfigError{err}
	}
	if cfg.Daemon != d.cfg.Daemon || cfg.Journal != d.cfg.Journal {
		d.log.Warnf("reload: [daemon] and [journal] settings take effect at the next start; keeping the running ones")
		cfg.Daemon, cfg.Journal = d.cfg.Daemon, d.cfg.Journal
	}
	for _, w := range cfg.Warnings {
		d.log.Warnf("%s", w)
	}
	if err := d.fw.Setup(firewallRules(cfg)); err != nil {
		d.log.Errorf("reload: firewall: %v; keeping the running configuration", err)
		return err
	}
	oldTerms := d.matchTerms
	d.configureJails(cfg)
	d.cfg = cfg
	d.running.Store(cfg)
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	d.startLogind()
	if d.matchTerms != oldTerms {
		d.stopReader()
		if err := d.startReader(journal.Position{Cursor: d.cursor, RealtimeUsec: d.realtimeUsec}); err != nil {
			d.log.Errorf("%v", err) // "journal: ..."
			d.readerRetry = d.now().Add(time.Second)
		}
	}
	d.saveNow()
	if d.bus != nil {
		d.bus.JailsChanged()
	}
	d.log.Event(events.MsgReloaded, sdjournal.PriInfo, nil, "Reloaded: %s", d.summary())
	return nil
}

func (d *Daemon) logConfigError(err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		d.log.Event(events.MsgConfigError, sdjournal.PriErr, nil, "Config error: %s", line)
	}
}

// stop ends a clean run: the reader is stopped, the state saved, and the bans left in the kernel,
// where they expire by themselves. It is called holding mu and lets go of it.
func (d *Daemon) stop() error {
	d.notify(sddaemon.SdNotifyStopping)
	d.stopReader()
	d.commit() // a failed Flush is logged there, and tried again at the next commit
	d.saveNow()
	d.saver.close()
	d.stoppedBans = len(d.engine.Bans(""))
	d.unlock()
	return nil
}

// ErrStopping is the error of a request (over the bus, from a plugin) that reaches the daemon after
// it began to stop.
var ErrStopping = errors.New("gaolerd is stopping")

// do runs fn on the main loop and waits for it; the bus's goroutines and the plugins use it.
func (d *Daemon) do(fn func()) error {
	done := make(chan struct{})
	select {
	case d.reqs <- func() { fn(); close(done) }:
	case <-d.ctx.Done():
		return ErrStopping
	}
	<-done
	return nil
}

// minuteCounter counts events in the last hour, a minute at a time, for STATUS=.
type minuteCounter struct {
	minutes [60]struct {
		at int64
		n  int
	}
}

func (c *minuteCounter) add(now time.Time) {
	m := now.Unix() / 60
	slot := &c.minutes[m%60]
	if slot.at != m {
		slot.at, slot.n = m, 0
	}
	slot.n++
}

func (c *minuteCounter) lastHour(now time.Time) int {
	m := now.Unix() / 60
	total := 0
	for _, s := range c.minutes {
		if m-s.at < 60 {
			total += s.n
		}
	}
	return total
}
