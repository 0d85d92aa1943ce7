package main

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/daemon"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/fleet"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/metrics"
)

// fleetPlugin runs fleet mode (package fleet) in the daemon when the configuration has [fleet]
// servers, and keeps the running fleet in current for the bus and the metrics.
func fleetPlugin(current *atomic.Pointer[fleet.Fleet]) daemon.Plugin {
	return daemon.Plugin{Name: "fleet", Start: func(ctx context.Context, h *daemon.Host) error {
		f, err := fleet.Start(ctx, h, fleetHost{h}, h.Log())
		if errors.Is(err, fleet.ErrDisabled) {
			return nil
		}
		if err != nil {
			return err
		}
		current.Store(f)
		h.AddMetrics(func(s *metrics.Snapshot) { s.Fleet = fleetMetrics(f.Status()) })
		return nil
	}}
}

// fleetMetrics is fleet mode's part of a metrics scrape.
func fleetMetrics(st fleet.Status) *metrics.Fleet {
	watched := 0
	for _, p := range st.Peers {
		if p.Watching {
			watched++
		}
	}
	return &metrics.Fleet{Connected: st.Connected, Peers: watched, Applied: st.AppliedTotal,
		Published: st.Published, Refused: st.Refused, Outbox: st.Outbox}
}

// fleetStatus is daemon.Options.FleetStatus for the fleet in current.
func fleetStatus(current *atomic.Pointer[fleet.Fleet]) func() (bus.FleetReply, bool) {
	return func() (bus.FleetReply, bool) {
		f := current.Load()
		if f == nil {
			return bus.FleetReply{}, false
		}
		st := f.Status()
		r := bus.FleetReply{Enabled: true, Host: st.Host, Connected: st.Connected, Server: st.Server,
			Outbox: st.Outbox, Published: st.Published, Applied: st.Applied, AppliedTotal: st.AppliedTotal,
			Refused: st.Refused, Peers: []bus.FleetPeer{}}
		for _, p := range st.Peers {
			r.Peers = append(r.Peers, bus.FleetPeer{Host: p.Host, Watching: p.Watching, Applied: p.Applied, Refused: p.Refused})
		}
		return r, true
	}
}

// fleetHost is the daemon as the fleet sees it (fleet.Daemon), on the plugin host.
type fleetHost struct{ h *daemon.Host }

// Bans returns the running bans as events, with their origins.
func (d fleetHost) Bans() []events.Event {
	bans, err := d.h.Bans("")
	if err != nil {
		return nil
	}
	out := make([]events.Event, 0, len(bans))
	for _, b := range bans {
		out = append(out, events.Event{Kind: events.Ban, Jail: b.Jail, Prefix: b.Prefix, BannedAt: b.BannedAt,
			Expires: b.Expires, Count: b.Count, Origin: b.Origin, BanOrigin: b.Origin, Rule: b.Rule})
	}
	return out
}

// ApplyPeerBan bans through the jail with the peer as origin. A running ban of the prefix that is
// not a peer's and lasts longer stays as it is.
func (d fleetHost) ApplyPeerBan(b fleet.PeerBan) error {
	until := time.Now().Add(b.For)
	if old, ok := d.running(b.Jail, b.Prefix); ok && old.Origin.Kind != events.OriginPeer && !old.Expires.Before(until) {
		return nil
	}
	_, err := d.h.Ban(daemon.BanRequest{Jail: b.Jail, Prefix: b.Prefix, Expires: until, Count: b.Count,
		Origin: events.Origin{Kind: events.OriginPeer, Peer: b.Peer}})
	return err
}

// LiftPeerBan lifts the jail's ban of prefix if peer's is the one running.
func (d fleetHost) LiftPeerBan(jail string, prefix netip.Prefix, peer string) error {
	old, ok := d.running(jail, prefix)
	if !ok || old.Origin.Kind != events.OriginPeer || old.Origin.Peer != peer {
		return nil
	}
	_, err := d.h.Unban(jail, prefix, events.Origin{Kind: events.OriginPeer, Peer: peer})
	if errors.Is(err, jails.ErrNotBanned) {
		return nil
	}
	return err
}

// running returns the jail's running ban of exactly prefix.
func (d fleetHost) running(jail string, prefix netip.Prefix) (jails.Ban, bool) {
	bans, err := d.h.Bans(jail)
	if err != nil {
		return jails.Ban{}, false
	}
	for _, b := range bans {
		if b.Prefix == prefix {
			return b, true
		}
	}
	return jails.Ban{}, false
}
