package bus

import (
	"encoding/json"
	"fmt"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// FleetBackend is the part of a Backend that answers the Manager's Fleet method (fleet mode, see
// package fleet); a Backend that implements it gets the method. Its method is called as Backend's are.
type FleetBackend interface {
	// FleetStatus describes this host's membership in a fleet; Enabled is false without one.
	FleetStatus() (FleetReply, error)
}

// FleetReply is the answer of Fleet, sent on the bus as one JSON document (the method returns s), so
// that it can grow without changing the method's signature.
type FleetReply struct {
	Enabled      bool        `json:"enabled"`
	Host         string      `json:"host,omitempty"`   // this host's name in the fleet
	Connected    bool        `json:"connected"`        // to the NATS cluster, now
	Server       string      `json:"server,omitempty"` // the server connected to, or the last one
	Outbox       int         `json:"outbox"`           // bans and unbans waiting to be published
	Published    uint64      `json:"published"`        // bans published since gaolerd started
	Applied      int         `json:"applied"`          // peers' bans applied here and running
	AppliedTotal uint64      `json:"applied_total"`    // peers' bans applied since gaolerd started
	Refused      uint64      `json:"refused"`          // peers' bans refused since gaolerd started
	Peers        []FleetPeer `json:"peers"`
}

// FleetPeer is one other host of the fleet, as this host sees it.
type FleetPeer struct {
	Host     string `json:"host"`
	Watching bool   `json:"watching"` // its bucket is being watched
	Applied  int    `json:"applied"`  // its bans applied here and running
	Refused  uint64 `json:"refused"`  // its bans refused here (ignored, flooding, malformed)
}

var fleetMethod = introspect.Method{Name: "Fleet", Args: []introspect.Arg{arg("reply_json", "s", "out")}}

// Fleet answers `gaoler status`'s fleet lines as a JSON FleetReply. It holds host names and counts,
// no addresses, so any user may call it.
func (m managerMethods) Fleet() (string, *dbus.Error) {
	r := FleetReply{}
	if fb, ok := m.s.b.(FleetBackend); ok {
		var err error
		if r, err = fb.FleetStatus(); err != nil {
			return "", dbusError(err)
		}
	}
	if r.Peers == nil {
		r.Peers = []FleetPeer{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", dbusError(err)
	}
	return string(b), nil
}

// Fleet asks the daemon for its fleet status.
func (c *Client) Fleet() (FleetReply, error) {
	var text string
	if err := c.call(ManagerPath, ManagerInterface+".Fleet").Store(&text); err != nil {
		return FleetReply{}, remoteError(err)
	}
	var r FleetReply
	if err := json.Unmarshal([]byte(text), &r); err != nil {
		return FleetReply{}, fmt.Errorf("Fleet: the daemon's answer is not a FleetReply: %w", err)
	}
	return r, nil
}

// OriginBackend is the part of a Backend that tells who made each running ban (this host's filter,
// an admin, a fleet peer); a Backend that implements it gets the Jail method ListBanOrigins.
type OriginBackend interface {
	// BanOrigins returns the origin of each running ban of jail, or ErrNoSuchJail.
	BanOrigins(jail string) ([]BanOrigin, error)
}

// BanOrigin is a running ban's address (as ListBans writes it) and its origin: "filter", "manual",
// "peer" or "restored", with the peer's host name for a peer's ban (D-Bus type (sss)).
type BanOrigin struct {
	Address string
	Origin  string
	Peer    string
}

var listBanOriginsMethod = introspect.Method{Name: "ListBanOrigins", Args: []introspect.Arg{arg("origins", "a(sss)", "out")}}

// ListBanOrigins answers `gaoler banned`'s ORIGIN column: (address, origin, peer) for each running ban.
// Like ListBans, any user may call it.
func (j jailMethods) ListBanOrigins(msg dbus.Message) ([]BanOrigin, *dbus.Error) {
	ob, ok := j.s.b.(OriginBackend)
	if !ok {
		return nil, dbusError(errNoOrigins)
	}
	return jailList(msg, ob.BanOrigins)
}

// BanOrigins asks the daemon who made each running ban of jail.
func (c *Client) BanOrigins(jail string) ([]BanOrigin, error) {
	var out []BanOrigin
	if err := c.call(JailPath(jail), JailInterface+".ListBanOrigins").Store(&out); err != nil {
		return nil, remoteError(err)
	}
	return out, nil
}
