package daemon

import (
	"github.com/gaoler/gaoler/bus"
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
