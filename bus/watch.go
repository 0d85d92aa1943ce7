package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// BanSignal is one BannedEx or UnbannedEx signal as a Client receives it (see signals.go for the
// arguments).
type BanSignal struct {
	Unban        bool // an UnbannedEx; else a BannedEx
	Jail, Prefix string
	BannedAtUsec uint64 // BannedEx only
	ExpiresUsec  uint64 // BannedEx only
	BanCount     uint32
	Reason       string // UnbannedEx only: "manual", "expired", "unban-all", "jail removed", "peer"
	// Origin, UID, Peer and Rule are who made the ban (for an unban, the ban lifted).
	Origin string
	UID    uint32
	Peer   string
	Rule   string
	// By, ByUID and ByPeer are, for an unban, who lifted it: "manual", "peer" or ByDaemon.
	By     string
	ByUID  uint32
	ByPeer string
}

// WatchBans calls handle, in order, for each BannedEx and UnbannedEx the daemon sends, until ctx is
// done (it returns nil then) or the connection to the bus breaks. The daemon may restart meanwhile:
// the bus delivers the signals of whoever owns BusName. Receiving signals needs no privilege.
func (c *Client) WatchBans(ctx context.Context, handle func(BanSignal)) error {
	match := []dbus.MatchOption{dbus.WithMatchSender(BusName), dbus.WithMatchObjectPath(ManagerPath),
		dbus.WithMatchInterface(ManagerInterface)}
	if err := c.conn.AddMatchSignalContext(ctx, match...); err != nil {
		return fmt.Errorf("subscribe to %s's signals: %w", BusName, err)
	}
	defer c.conn.RemoveMatchSignal(match...)
	ch := make(chan *dbus.Signal, 256)
	c.conn.Signal(ch)
	defer c.conn.RemoveSignal(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.conn.Context().Done():
			return errors.New("the connection to the bus closed")
		case sig, ok := <-ch:
			if !ok {
				return errors.New("the connection to the bus closed")
			}
			if b, ok := banSignal(sig); ok {
				handle(b)
			}
		}
	}
}

// banSignal decodes a BannedEx or an UnbannedEx; it reports false for any other signal, or one whose
// arguments are not those of signals.go.
func banSignal(sig *dbus.Signal) (BanSignal, bool) {
	var b BanSignal
	var err error
	switch sig.Name {
	case bannedExSignalName:
		err = dbus.Store(sig.Body, &b.Jail, &b.Prefix, &b.BannedAtUsec, &b.ExpiresUsec, &b.BanCount,
			&b.Origin, &b.UID, &b.Peer, &b.Rule)
	case unbannedExSignalName:
		b.Unban = true
		err = dbus.Store(sig.Body, &b.Jail, &b.Prefix, &b.Reason, &b.BanCount, &b.Origin, &b.UID, &b.Peer,
			&b.Rule, &b.By, &b.ByUID, &b.ByPeer)
	default:
		return BanSignal{}, false
	}
	return b, err == nil
}
