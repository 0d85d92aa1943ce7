package bus

import (
	"fmt"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// MaxPage is the most bans one ListBansPage reply holds: a few hundred kilobytes on the bus, however
// many bans the jail has (ListBans of 100,000 bans is megabytes, and as long to build).
const MaxPage = 10_000

// PageBackend is the part of a Backend that lists a jail's running bans a page at a time; a Backend
// that implements it gets the Jail method ListBansPage. Its method is called as Backend's are.
type PageBackend interface {
	// BanPage returns at most limit (1 to MaxPage) of the jail's running bans whose address sorts
	// after after ("" = from the first), in ListBans's order, and whether more follow; ErrNoSuchJail,
	// or ErrInvalidAddress when after is no address or prefix.
	BanPage(jail, after string, limit int) (bans []BanInfo, more bool, err error)
}

var listBansPageMethod = introspect.Method{Name: "ListBansPage", Args: []introspect.Arg{
	arg("after", "s", "in"), arg("limit", "u", "in"), arg("bans", "a(sttu)", "out"), arg("next", "s", "out")}}

// ListBansPage is ListBans a page at a time: the bans after the address after ("" = from the
// first), at most limit of them (0, or more than MaxPage: MaxPage), and next, the address to pass as
// after for the following page, "" once this page is the last. The pages follow the list as it is
// when each is read: a ban that starts or ends meanwhile is listed or not, every other ban exactly
// once. Like ListBans, any user may call it.
func (j jailMethods) ListBansPage(msg dbus.Message, after string, limit uint32) ([]BanInfo, string, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return nil, "", err
	}
	pb, ok := j.s.b.(PageBackend)
	if !ok {
		return nil, "", dbusError(fmt.Errorf("this gaolerd cannot list its bans a page at a time"))
	}
	n := int(limit)
	if n <= 0 || n > MaxPage {
		n = MaxPage
	}
	bans, more, e := pb.BanPage(name, after, n)
	if e != nil {
		return nil, "", dbusError(e)
	}
	if bans == nil {
		bans = []BanInfo{}
	}
	next := ""
	if more && len(bans) > 0 {
		next = bans[len(bans)-1].Address
	}
	return bans, next, nil
}

// BanPage asks the daemon for a page of the running bans of jail (ListBansPage) and returns it with
// the after of the next page, "" after the last.
func (c *Client) BanPage(jail, after string, limit uint32) ([]BanInfo, string, error) {
	var bans []BanInfo
	var next string
	if err := c.call(JailPath(jail), JailInterface+".ListBansPage", after, limit).Store(&bans, &next); err != nil {
		return nil, "", c.jailError(jail, err)
	}
	return bans, next, nil
}
