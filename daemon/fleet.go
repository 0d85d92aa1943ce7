package daemon

import (
	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/jails"
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
	return jailBans(b.d, jail, func(ban jails.Ban) bus.BanDetail {
		i := banInfo(ban)
		d := bus.BanDetail{Address: i.Address, BannedAtUsec: i.BannedAtUsec, ExpiresUsec: i.ExpiresUsec,
			BanCount: i.BanCount, Origin: ban.Origin.Kind.String(), UID: ban.Origin.UID, Peer: ban.Origin.Peer}
		if ban.Origin.Kind == events.OriginFilter {
			d.Rule = ban.Rule
		}
		return d
	})
}

// BanOrigins answers the bus's Jail.ListBanOrigins: who made each running ban of the jail.
func (b backend) BanOrigins(jail string) ([]bus.BanOrigin, error) {
	return jailBans(b.d, jail, func(ban jails.Ban) bus.BanOrigin {
		return bus.BanOrigin{Address: events.PrefixString(ban.Prefix), Origin: ban.Origin.Kind.String(), Peer: ban.Origin.Peer}
	})
}
