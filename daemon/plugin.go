package daemon

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/gaoler/gaoler/config"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/metrics"
)

// Plugin is a capability that runs inside gaolerd beside the jails: actions, metrics, the fleet. It
// hears the daemon's bans and unbans through the Hub, runs on goroutines the daemon waits for at
// stop, and calls back into the daemon through the Host. A plugin's package defines the small
// interface it needs of the Host (a *Host satisfies it) and never imports this package; cmd/gaolerd
// wires it in with a Plugin value:
//
//	daemon.Options{Plugins: []daemon.Plugin{{Name: "fleet", Start: func(ctx context.Context, h *daemon.Host) error {
//		return fleet.Start(ctx, h, ...)
//	}}}}
type Plugin struct {
	// Name names the plugin in the daemon's log and in HubStats; it is also the name of its Hub
	// subscription.
	Name string
	// Start is called once, when the daemon has restored its checkpoint and built the firewall, before
	// it reads the journal, serves the bus or announces anything: the plugin subscribes (h.Subscribe)
	// and starts its goroutines (h.Go). ctx is cancelled at stop, after the Hub has delivered every
	// event. Start must return promptly and must not call the Host's Ban, Unban, Bans or Stats (they
	// wait for the daemon's main loop, which is not running yet): its goroutines may. An error is
	// logged and the daemon runs on without the plugin.
	Start func(ctx context.Context, h *Host) error
}

// Host is the daemon as a plugin sees it. Its methods are safe for concurrent use; those that read or
// change bans run on the daemon's main loop and wait for it, and fail with ErrStopping once the daemon
// is stopping.
type Host struct {
	d    *Daemon
	name string
	wg   *sync.WaitGroup
}

// Subscribe hands the plugin every event published from now on: handle runs on a goroutine of its
// own, one event at a time, in order; at most queue events wait for it, beyond that the oldest is
// dropped and counted (HubStats). handle may call the Host.
func (h *Host) Subscribe(queue int, handle func(events.Event)) {
	h.d.hub.Subscribe(h.name, queue, handle)
}

// Go runs fn on a goroutine of its own; at stop the daemon cancels the plugin's context and waits
// for fn to return.
func (h *Host) Go(fn func()) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		fn()
	}()
}

// Log is the daemon's logger, for the plugin's own entries.
func (h *Host) Log() *Logger { return h.d.log }

// Config returns the running configuration. A reload replaces it: read it when needed rather than
// keeping it. It must not be modified.
func (h *Host) Config() *config.Config { return h.d.running.Load() }

// BanRequest is a ban decided outside this host's jails, a fleet peer's: the prefix, until when, the
// ban's number as its origin counted it, and the origin itself.
type BanRequest struct {
	Jail    string
	Prefix  netip.Prefix
	Expires time.Time // zero: the jail's bantime from now, with increments
	Count   int       // the origin's number for the ban; this host's history numbers it when that is more
	Origin  events.Origin
}

// Ban applies r as the jail's own bans are applied: in the ban history, in the kernel, then announced
// on the Hub with r.Origin (a subscriber that shares bans, the fleet, recognises its peers' bans by
// that origin and does not republish them). The jail's ignoreip wins: a prefix holding an address the
// jail ignores is refused (jails.ErrIgnored), as is a prefix with host bits set
// (jails.ErrInvalidAddress) and a ban already over (jails.ErrOver). A prefix inside a wider running ban
// returns that ban unchanged.
func (h *Host) Ban(r BanRequest) (jails.Ban, error) {
	var b jails.Ban
	var err error
	if derr := h.d.do(func() {
		b, err = h.d.engine.BanPrefix(r.Jail, r.Prefix, r.Expires, r.Count, r.Origin)
		if err == nil {
			err = h.d.commit()
			h.d.dirty = true
		}
	}); derr != nil {
		return jails.Ban{}, derr
	}
	return b, err
}

// Unban lifts the jail's ban of p (or the wider one holding it) on behalf of by, a peer or an admin,
// and forgives the failures counted so far, as `gaoler unban` does; jails.ErrNotBanned when there is
// none. The unban is announced with by as its origin and reason "peer" for a peer, "manual" otherwise.
func (h *Host) Unban(jail string, p netip.Prefix, by events.Origin) (jails.Ban, error) {
	var b jails.Ban
	var err error
	if derr := h.d.do(func() {
		b, err = h.d.engine.Unban(jail, p.String(), by)
		if err == nil {
			err = h.d.commit()
			h.d.dirty = true
		}
	}); derr != nil {
		return jails.Ban{}, derr
	}
	return b, err
}

// Bans returns the running bans of the jail ("" = every jail), sorted by jail and prefix, with their
// origins, rules and entries.
func (h *Host) Bans(jail string) ([]jails.Ban, error) {
	var bans []jails.Ban
	err := h.d.do(func() { bans = h.d.engine.Bans(jail) })
	return bans, err
}

// JailStats are one jail's counters.
type JailStats struct {
	Jail string
	jails.Stats
}

// Stats returns the counters of every enabled jail, in the configuration's order.
func (h *Host) Stats() ([]JailStats, error) {
	var out []JailStats
	err := h.d.do(func() {
		for _, j := range h.d.active {
			if st, err := h.d.engine.Stats(j.name); err == nil {
				out = append(out, JailStats{Jail: j.name, Stats: st})
			}
		}
	})
	return out, err
}

// AddMetrics adds fill to every metrics scrape: it fills in the plugin's part of the Snapshot (the
// actions' outcomes, the fleet's state). Call it from Start (which runs before the daemon serves
// anything, so no lock is needed). fill runs on the daemon's main loop at each scrape: it must be quick,
// take only the plugin's own locks, and not call the Host.
func (h *Host) AddMetrics(fill func(s *metrics.Snapshot)) {
	h.d.metricsFills = append(h.d.metricsFills, fill)
}

// HubStats returns the Hub's counters for every subscriber (queued, handled, dropped), the daemon's
// own (the journal log, the bus signals) and the plugins'.
func (h *Host) HubStats() []events.Stats { return h.d.hub.Stats() }

// startPlugins starts the configured plugins (see Plugin.Start).
func (d *Daemon) startPlugins() {
	ctx, cancel := context.WithCancel(context.Background())
	d.pluginCancel = cancel
	for _, p := range d.opts.Plugins {
		h := &Host{d: d, name: p.Name, wg: &d.pluginWG}
		if err := p.Start(ctx, h); err != nil {
			d.log.Errorf("%s: %v; running without it", p.Name, err)
		}
	}
}

// stopPlugins cancels the plugins' context and waits for their goroutines; the Hub is closed (every
// event delivered) before.
func (d *Daemon) stopPlugins() {
	if d.pluginCancel != nil {
		d.pluginCancel()
		d.pluginWG.Wait()
	}
}
