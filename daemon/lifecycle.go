package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/firewall"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/journal"
	"github.com/gaoler/gaoler/memlimit"
	"github.com/gaoler/gaoler/metrics"
)

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
		lists:      make(chan struct{}, 1),
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
	if memlimit.FromEnv() {
		d.log.Infof("memory limit from GOMEMLIMIT=%s ([daemon] memory_limit is ignored)", os.Getenv("GOMEMLIMIT"))
	}
	memlimit.Keep(ctx, cfg.Daemon.MemoryLimit)
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
	connect := bus.SystemBus // honours DBUS_SYSTEM_BUS_ADDRESS
	if d.opts.Bus != nil {
		connect = d.opts.Bus
	}
	go d.bus.Serve(d.ctx, connect)
	d.serveMetrics()
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

// do runs fn on the main loop and waits for it; the bus's goroutines and the plugins use it. When
// fn took a checkpoint for its caller (saveForReply), do also waits until that checkpoint is written,
// after the main loop has let go of the lock.
func (d *Daemon) do(fn func()) error {
	done := make(chan struct{})
	var durable uint64
	select {
	case d.reqs <- func() { fn(); durable, d.durable = d.durable, 0; close(done) }:
	case <-d.ctx.Done():
		return ErrStopping
	}
	<-done
	if durable > 0 {
		// A write that failed is logged by the saver, and the next tick saves again (takeFailed).
		_ = d.saver.wait(durable)
	}
	return nil
}

// saveForReply takes a checkpoint for what the caller of do is told is done (a manual ban or unban,
// a login's trust): do waits for it to be on disk once the lock is let go, so the fsyncs (and the
// encoding of 100,000 bans) hold up that caller only, never the journal reader. A flood of manual
// bans coalesces: the saver writes the newest checkpoint waiting, which covers the older ones.
func (d *Daemon) saveForReply() { d.durable = d.save() }
