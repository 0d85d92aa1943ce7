package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/gaoler/gaoler/bus"
)

// fleetAPI is the fleet part of the daemon's API; bus.Client has it, the tests' fakes may not.
type fleetAPI interface {
	Fleet() (bus.FleetReply, error)
}

// fleetStatus returns the daemon's fleet status, and false when it is in no fleet (or cannot say).
func fleetStatus(d api) (*bus.FleetReply, bool) {
	f, ok := d.(fleetAPI)
	if !ok {
		return nil, false
	}
	r, err := f.Fleet()
	if err != nil || !r.Enabled {
		return nil, false
	}
	return &r, true
}

// printFleet writes the fleet's lines of `gaoler status`, as the last branch of its tree.
func printFleet(w io.Writer, r *bus.FleetReply) {
	state := "disconnected (bans wait in the outbox)"
	if r.Connected {
		state = "connected to " + r.Server
	}
	fmt.Fprintf(w, "`- Fleet:\t%s, %s\n", r.Host, state)
	peers := make([]string, 0, len(r.Peers))
	for _, p := range r.Peers {
		s := fmt.Sprintf("%s (%d applied", p.Host, p.Applied)
		if p.Refused > 0 {
			s += fmt.Sprintf(", %d refused", p.Refused)
		}
		if !p.Watching {
			s += ", not watched"
		}
		peers = append(peers, s+")")
	}
	if len(peers) == 0 {
		peers = append(peers, "none yet")
	}
	fmt.Fprintf(w, "   |- Peers:\t%s\n", strings.Join(peers, ", "))
	fmt.Fprintf(w, "   |- Bans applied from peers:\t%d (%d refused)\n", r.Applied, r.Refused)
	fmt.Fprintf(w, "   `- Outbox:\t%d waiting (%d published)\n", r.Outbox, r.Published)
}
