package bus

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// WhyBackend is the part of a Backend that answers the Manager's Why method; a Backend that
// implements it gets the method. Its method is called as Backend's are.
type WhyBackend interface {
	// Why explains address: its bans in jail ("" for every jail), running or recent, and, for each jail
	// that does not ban it, why not. It returns ErrNoSuchJail or ErrInvalidAddress.
	Why(address, jail string) (WhyReply, error)
}

// ManualBackend is the part of a Backend that takes the caller's uid with a manual ban or unban, so
// the ban's origin (in `gaoler why`, the journal and the actions' payload) says who made it. When
// the Backend implements it, the Jail interface's Ban, BanEx, Unban and UnbanEx call it instead of Backend's.
// BanBy returns the ban now in the kernel, as Backend's Ban does; UnbanBy the ban lifted, as Backend's
// Unban does.
type ManualBackend interface {
	BanBy(jail, address string, seconds uint64, uid uint32) (BanInfo, error)
	UnbanBy(jail, address string, uid uint32) (BanInfo, error)
}

// WhyReply is the answer of Why, sent on the bus as one JSON document (the method returns s): the
// document grows with new reasons without changing the method's signature.
type WhyReply struct {
	Address string `json:"address"`
	// Bans are the bans holding the address, running ones first, then recent ones that ended, each
	// group newest first.
	Bans []WhyBan `json:"bans"`
	// NotBanned has an element for each jail asked about that does not ban the address now.
	NotBanned []WhyNot `json:"not_banned"`
}

// WhyBan is one ban of the address: when, why, by whom, and the journal entries that made it.
type WhyBan struct {
	Jail     string    `json:"jail"`
	Prefix   string    `json:"prefix"` // the banned address, or the prefix holding it
	Active   bool      `json:"active"`
	BannedAt time.Time `json:"banned_at"`
	Expires  time.Time `json:"expires"`
	// Ended and EndReason say when and why a ban that is over ended: "expired", "manual", "peer",
	// "unban-all", or "replaced" (by a new ban of the same prefix).
	Ended     time.Time `json:"ended,omitzero"`
	EndReason string    `json:"end_reason,omitempty"`
	Count     int       `json:"ban_count"`
	Rule      string    `json:"rule,omitempty"` // the filter rule of the failure that made the ban
	Origin    string    `json:"origin"`         // "filter", "manual", "peer" or "restored"
	UID       *uint32   `json:"uid,omitempty"`  // a manual ban: the bus caller's uid
	Peer      string    `json:"peer,omitempty"` // a fleet peer's ban: the peer
	Entries   []WhyLine `json:"entries"`        // oldest first, at most the jail's maxretry
}

// WhyLine is a journal entry behind a ban.
type WhyLine struct {
	Time    time.Time `json:"time"`
	Cursor  string    `json:"cursor,omitempty"`
	Message string    `json:"message"`
	PID     int       `json:"pid,omitempty"`
}

// WhyNot says why one jail does not ban the address now. Both fields may be empty: the address has
// simply not failed enough (or not at all).
type WhyNot struct {
	Jail string `json:"jail"`
	// Ignored names the setting that makes the jail ignore the address: "ignoreip 192.0.2.0/24",
	// "ignoreself".
	Ignored string `json:"ignored,omitempty"`
	// Trusted is the jail's trust after login of the address, when it has one.
	Trusted *WhyTrust `json:"trusted,omitempty"`
}

// WhyTrust is a trust after login, as `gaoler why` shows it: trusted until Until since the login of
// User by Method at At.
type WhyTrust struct {
	Until  time.Time `json:"until"`
	At     time.Time `json:"at"`
	User   string    `json:"user,omitempty"`
	Method string    `json:"method,omitempty"`
	Logins int       `json:"logins,omitempty"`
}

var whyMethod = introspect.Method{Name: "Why", Args: []introspect.Arg{
	arg("address", "s", "in"), arg("jail", "s", "in"), arg("reply_json", "s", "out"),
}}

// whyBackend returns the server's WhyBackend, or nil when the Backend has none.
func (s *Server) whyBackend() WhyBackend {
	wb, _ := s.b.(WhyBackend)
	return wb
}

// Why answers `gaoler why`: the bans of address in jail ("" for all) and why the other jails do not
// ban it, as a JSON WhyReply. Only root may call it: the journal entries it returns are root's to
// read.
func (m managerMethods) Why(address, jail string) (string, *dbus.Error) {
	wb := m.s.whyBackend()
	if wb == nil {
		return "", dbusError(fmt.Errorf("this gaolerd cannot explain its bans"))
	}
	if _, err := netip.ParseAddr(address); err != nil {
		return "", dbusError(fmt.Errorf("%w: %q is not an IP address", ErrInvalidAddress, address))
	}
	r, err := wb.Why(address, jail)
	if err != nil {
		return "", dbusError(err)
	}
	if r.Bans == nil {
		r.Bans = []WhyBan{}
	}
	if r.NotBanned == nil {
		r.NotBanned = []WhyNot{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", dbusError(err)
	}
	return string(b), nil
}

// Why asks the daemon why address is or is not banned, in jail or ("" ) in every jail.
func (c *Client) Why(address, jail string) (WhyReply, error) {
	var text string
	if err := c.call(ManagerPath, ManagerInterface+".Why", address, jail).Store(&text); err != nil {
		return WhyReply{}, remoteError(err)
	}
	var r WhyReply
	if err := json.Unmarshal([]byte(text), &r); err != nil {
		return WhyReply{}, fmt.Errorf("Why: the daemon's answer is not a WhyReply: %w", err)
	}
	return r, nil
}

// callerUID asks the bus for the uid of the connection that sent msg.
func callerUID(conn *dbus.Conn, msg dbus.Message) (uint32, error) {
	if conn == nil {
		return 0, fmt.Errorf("not connected to the bus")
	}
	sender, _ := msg.Headers[dbus.FieldSender].Value().(string)
	var uid uint32
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid); err != nil {
		return 0, fmt.Errorf("asking the bus who called: %w", err)
	}
	return uid, nil
}
