package bus

import (
	"errors"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// DetailBackend is the part of a Backend that lists the running bans with who made them; a Backend
// that implements it gets the Jail method ListBansEx. Its method is called as Backend's are.
type DetailBackend interface {
	// BanDetails returns the jail's running bans, sorted as ListBans sorts them, or ErrNoSuchJail.
	BanDetails(jail string) ([]BanDetail, error)
}

// BanDetail is one running ban as ListBansEx returns it, D-Bus type (sttususs): ListBans's four
// values, then its origin as the BannedEx signal carries it: "filter" (Rule is the filter rule),
// "manual" (UID is the bus caller's uid) or "peer" (Peer is the fleet peer's host name). UID means
// something only for "manual", Peer only for "peer".
type BanDetail struct {
	Address      string
	BannedAtUsec uint64
	ExpiresUsec  uint64
	BanCount     uint32
	Origin       string
	UID          uint32
	Peer         string
	Rule         string
}

var listBansExMethod = introspect.Method{Name: "ListBansEx", Args: []introspect.Arg{arg("bans", "a(sttususs)", "out")}}

// ListBansEx is ListBans with each ban's origin: one call gives a subscriber of BannedEx and
// UnbannedEx the state those signals change. Like ListBans, any user may call it.
func (j jailMethods) ListBansEx(msg dbus.Message) ([]BanDetail, *dbus.Error) {
	db, ok := j.s.b.(DetailBackend)
	if !ok {
		return nil, dbusError(errNoOrigins)
	}
	return jailList(msg, db.BanDetails)
}

// errNoOrigins answers the origin listings of a Backend that cannot tell its bans' origins.
var errNoOrigins = errors.New("this gaolerd cannot tell its bans' origins")

// jailList answers a listing of the jail msg is addressed to: list's answer, an empty array rather
// than none.
func jailList[T any](msg dbus.Message, list func(jail string) ([]T, error)) ([]T, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return nil, err
	}
	out, e := list(name)
	if e != nil {
		return nil, dbusError(e)
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// BanDetails asks the daemon for the running bans of jail with their origins (ListBansEx).
func (c *Client) BanDetails(jail string) ([]BanDetail, error) {
	var out []BanDetail
	if err := c.call(JailPath(jail), JailInterface+".ListBansEx").Store(&out); err != nil {
		return nil, c.jailError(jail, err)
	}
	return out, nil
}
