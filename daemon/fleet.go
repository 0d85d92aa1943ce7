package daemon

import (
	"fmt"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
)

// FleetStatus answers the bus's Manager.Fleet with Options.FleetStatus, the fleet plugin's status
// (cmd/gaolerd wires it); without a fleet the reply says it is not enabled.
func (b backend) FleetStatus() (bus.FleetReply, error) {
	if b.d.opts.FleetStatus == nil {
		return bus.FleetReply{}, nil
	}
	r, ok := b.d.opts.FleetStatus()
	if !ok {
		return bus.FleetReply{}, nil
	}
	return r, nil
}

// BanDetails answers the bus's Jail.ListBansEx: the running bans of the jail with who made each.
func (b backend) BanDetails(jail string) ([]bus.BanDetail, error) {
	var out []bus.BanDetail
	var err error
	if derr := b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		for _, ban := range b.d.engine.Bans(jail) {
			i := banInfo(ban)
			d := bus.BanDetail{Address: i.Address, BannedAtUsec: i.BannedAtUsec, ExpiresUsec: i.ExpiresUsec,
				BanCount: i.BanCount, Origin: ban.Origin.Kind.String(), UID: ban.Origin.UID, Peer: ban.Origin.Peer}
			if ban.Origin.Kind == events.OriginFilter {
				d.Rule = ban.Rule
			}
			out = append(out, d)
		}
	}); derr != nil {
		return nil, derr
	}
	return out, err
}

// BanOrigins answers the bus's Jail.ListBanOrigins: who made each running ban of the jail.
func (b backend) BanOrigins(jail string) ([]bus.BanOrigin, error) {
	var out []bus.BanOrigin
	var err error
	if derr := b.d.do(func() {
		if b.d.jailConfig(jail) == nil {
			err = fmt.Errorf("%w: %q", bus.ErrNoSuchJail, jail)
			return
		}
		for _, ban := range b.d.engine.Bans(jail) {
			out = append(out, bus.BanOrigin{Address: banInfo(ban).Address, Origin: ban.Origin.Kind.String(), Peer: ban.Origin.Peer})
		}
	}); derr != nil {
		return nil, derr
	}
	return out, err
}
