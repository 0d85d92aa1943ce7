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

// originAPI is the part of the daemon's API that tells the bans' origins.
type originAPI interface {
	BanOrigins(jail string) ([]bus.BanOrigin, error)
}

// banOrigins returns the origins of jail's running bans by address; none from a daemon that cannot
// tell.
func banOrigins(d api, jail string) map[string]bus.BanOrigin {
	o, ok := d.(originAPI)
	if !ok {
		return nil
	}
	list, err := o.BanOrigins(jail)
	if err != nil {
		return nil
	}
	out := make(map[string]bus.BanOrigin, len(list))
	for _, b := range list {
		out[b.Address] = b
	}
	return out
}

// originText is an origin as `gaoler banned` shows it: "filter", "manual", "peer h1".
func originText(origin, peer string) string {
	if origin == "peer" && peer != "" {
		return "peer " + peer
	}
	return origin
}
