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

// originAPI is the part of the daemon's API that tells the bans' origins (ListBanOrigins).
type originAPI interface {
	BanOrigins(jail string) ([]bus.BanOrigin, error)
}

// detailAPI is the part of the daemon's API that lists the bans with their origins, uids, peers and
// rules (ListBansEx).
type detailAPI interface {
	BanDetails(jail string) ([]bus.BanDetail, error)
}

// banOrigin is who made a ban, as `gaoler banned` shows it. UID is nil but for a manual ban (and from
// an older daemon, which does not say).
type banOrigin struct {
	Origin, Peer, Rule string
	UID                *uint32
}

// banOrigins returns who made each of jail's running bans, by address: from ListBansEx, else (an
// older daemon) from ListBanOrigins, which says neither the uid nor the rule; none from a daemon that
// cannot tell.
func banOrigins(d api, jail string) map[string]banOrigin {
	if da, ok := d.(detailAPI); ok {
		if list, err := da.BanDetails(jail); err == nil {
			out := make(map[string]banOrigin, len(list))
			for _, b := range list {
				o := banOrigin{Origin: b.Origin, Peer: b.Peer, Rule: b.Rule}
				if b.Origin == "manual" {
					uid := b.UID
					o.UID = &uid
				}
				out[b.Address] = o
			}
			return out
		}
	}
	o, ok := d.(originAPI)
	if !ok {
		return nil
	}
	list, err := o.BanOrigins(jail)
	if err != nil {
		return nil
	}
	out := make(map[string]banOrigin, len(list))
	for _, b := range list {
		out[b.Address] = banOrigin{Origin: b.Origin, Peer: b.Peer}
	}
	return out
}

// originText is an origin as `gaoler banned` shows it: "filter", "manual (uid 0)", "peer h1".
func originText(origin, peer string, uid *uint32) string {
	switch {
	case origin == "peer" && peer != "":
		return "peer " + peer
	case origin == "manual" && uid != nil:
		return fmt.Sprintf("manual (uid %d)", *uid)
	}
	return origin
}
