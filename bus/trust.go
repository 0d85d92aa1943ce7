package bus

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// TrustInterface is the interface of each jail object for the trust after login: addresses from which
// someone logged in, which the jail does not ban for a while.
const TrustInterface = "io.github.gaoler.Gaoler1.Trust"

// ErrNotTrusted is io.github.gaoler.Gaoler1.Error.NotTrusted: the jail does not trust the address.
var ErrNotTrusted = errors.New("not trusted")

// TrustBackend is the part of a Backend that serves TrustInterface; a Backend that implements it gets
// the interface on every jail object. Its methods are called as Backend's are.
type TrustBackend interface {
	// Trust makes the jail trust address (one address) for seconds (0: the jail's
	// trust_after_login); uid is the caller's. It returns ErrNoSuchJail or ErrInvalidAddress.
	Trust(jail, address string, seconds uint64, uid uint32) error
	// Untrust ends the jail's trust of address: ErrNoSuchJail, ErrInvalidAddress or ErrNotTrusted.
	Untrust(jail, address string) error
	// ListTrusted returns the jail's running trusts, sorted by address.
	ListTrusted(jail string) ([]TrustInfo, error)
	// TrustOf returns the jail's running trust of address: none or one.
	TrustOf(jail, address string) ([]TrustInfo, error)
	// TrustSettings returns the jail's trust_after_login in seconds (0: off).
	TrustSettings(jail string) (afterSeconds uint64, err error)
}

// TrustInfo is one trusted address as ListTrusted returns it: D-Bus type (sttssu). Times are
// microseconds since the Unix epoch; At is the latest login (or manual trust) that gave or extended
// the trust; Method is sshd's ("publickey", "password", ...), "logind" or "manual".
type TrustInfo struct {
	Address   string
	UntilUsec uint64
	AtUsec    uint64
	User      string
	Method    string
	Logins    uint32
}

// trustProperties are the Trust interface's properties, read on demand, never announced.
var trustProperties = []property{
	{"CurrentlyTrusted", uint32(0), prop.EmitFalse},
	{"TrustAfterLogin", uint64(0), prop.EmitFalse},
}

var trustInterface = introspect.Interface{
	Name: TrustInterface,
	Methods: []introspect.Method{
		{Name: "Trust", Args: []introspect.Arg{arg("address", "s", "in"), arg("seconds", "t", "in")}},
		{Name: "Untrust", Args: []introspect.Arg{arg("address", "s", "in")}},
		{Name: "ListTrusted", Args: []introspect.Arg{arg("trusted", "a(sttssu)", "out")}},
		{Name: "TrustOf", Args: []introspect.Arg{arg("address", "s", "in"), arg("trusted", "a(sttssu)", "out")}},
	},
	Properties: introspectProperties(trustProperties),
}

// trustBackend returns the server's TrustBackend, or nil when the Backend has none.
func (s *Server) trustBackend() TrustBackend {
	tb, _ := s.b.(TrustBackend)
	return tb
}

// jailInterfaces are the interfaces a jail object introspects with.
func (s *Server) jailInterfaces() []introspect.Interface {
	if s.trustBackend() != nil {
		return []introspect.Interface{jailInterface, trustInterface, prop.IntrospectData}
	}
	return []introspect.Interface{jailInterface, prop.IntrospectData}
}

// exportTrust exports TrustInterface under every jail's path, when the Backend serves it.
func (s *Server) exportTrust(conn *dbus.Conn) error {
	tb := s.trustBackend()
	if tb == nil {
		return nil
	}
	if err := conn.ExportSubtree(trustMethods{s, tb, conn}, JailPathPrefix, TrustInterface); err != nil {
		return fmt.Errorf("export %s on %s: %w", TrustInterface, JailPathPrefix, err)
	}
	return nil
}

// trustValues returns the Trust interface's properties of the jail.
func (s *Server) trustValues(jail string) (map[string]any, *dbus.Error) {
	tb := s.trustBackend()
	if tb == nil {
		return nil, prop.ErrIfaceNotFound
	}
	after, err := tb.TrustSettings(jail)
	if err != nil {
		return nil, dbusError(err)
	}
	list, err := tb.ListTrusted(jail)
	if err != nil {
		return nil, dbusError(err)
	}
	return map[string]any{"CurrentlyTrusted": uint32(len(list)), "TrustAfterLogin": after}, nil
}

// trustMethods are the methods of TrustInterface, for every jail.
type trustMethods struct {
	s    *Server
	tb   TrustBackend
	conn *dbus.Conn
}

// Trust trusts address in the jail for seconds (0: the jail's trust_after_login).
func (t trustMethods) Trust(msg dbus.Message, address string, seconds uint64) *dbus.Error {
	name, err := jailOf(msg)
	if err != nil {
		return err
	}
	if _, perr := netip.ParseAddr(address); perr != nil {
		return dbusError(fmt.Errorf("%w: %q is not an IP address (trust takes one address, not a prefix)", ErrInvalidAddress, address))
	}
	uid, uerr := t.callerUID(msg)
	if uerr != nil {
		return dbusError(uerr)
	}
	return dbusError(t.tb.Trust(name, address, seconds, uid))
}

// Untrust ends the jail's trust of address.
func (t trustMethods) Untrust(msg dbus.Message, address string) *dbus.Error {
	name, err := jailOf(msg)
	if err != nil {
		return err
	}
	if _, perr := netip.ParseAddr(address); perr != nil {
		return invalidAddress(address)
	}
	return dbusError(t.tb.Untrust(name, address))
}

// ListTrusted returns the jail's trusted addresses as a(sttssu).
func (t trustMethods) ListTrusted(msg dbus.Message) ([]TrustInfo, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return nil, err
	}
	list, e := t.tb.ListTrusted(name)
	return nonNilTrust(list), dbusError(e)
}

// TrustOf returns the jail's trust of address as a(sttssu): empty when it does not trust it.
func (t trustMethods) TrustOf(msg dbus.Message, address string) ([]TrustInfo, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return nil, err
	}
	if _, perr := netip.ParseAddr(address); perr != nil {
		return nil, invalidAddress(address)
	}
	list, e := t.tb.TrustOf(name, address)
	return nonNilTrust(list), dbusError(e)
}

// callerUID asks the bus for the uid of the connection that sent msg.
func (t trustMethods) callerUID(msg dbus.Message) (uint32, error) { return callerUID(t.conn, msg) }

func nonNilTrust(l []TrustInfo) []TrustInfo {
	if l == nil {
		return []TrustInfo{}
	}
	return l
}

// Trust makes the daemon trust address in jail for seconds (0: the jail's trust_after_login).
func (c *Client) Trust(jail, address string, seconds uint64) error {
	return c.jailError(jail, c.call(JailPath(jail), TrustInterface+".Trust", address, seconds).Err)
}

// Untrust ends the trust of address in jail.
func (c *Client) Untrust(jail, address string) error {
	return c.jailError(jail, c.call(JailPath(jail), TrustInterface+".Untrust", address).Err)
}

// ListTrusted returns the addresses jail trusts after a login.
func (c *Client) ListTrusted(jail string) ([]TrustInfo, error) {
	var out []TrustInfo
	err := c.call(JailPath(jail), TrustInterface+".ListTrusted").Store(&out)
	return out, c.jailError(jail, err)
}

// TrustOf returns jail's trust of address, and whether there is one.
func (c *Client) TrustOf(jail, address string) (TrustInfo, bool, error) {
	var out []TrustInfo
	if err := c.call(JailPath(jail), TrustInterface+".TrustOf", address).Store(&out); err != nil {
		return TrustInfo{}, false, c.jailError(jail, err)
	}
	if len(out) == 0 {
		return TrustInfo{}, false, nil
	}
	return out[0], true, nil
}

// TrustAfterLogin returns jail's trust_after_login in seconds (0: off) and how many addresses it
// trusts now.
func (c *Client) TrustAfterLogin(jail string) (afterSeconds uint64, trusted uint32, err error) {
	m, err := c.getAll(JailPath(jail), TrustInterface)
	if err != nil {
		return 0, 0, c.jailError(jail, err)
	}
	if v, ok := m["TrustAfterLogin"]; ok {
		dbus.Store([]any{v.Value()}, &afterSeconds)
	}
	if v, ok := m["CurrentlyTrusted"]; ok {
		dbus.Store([]any{v.Value()}, &trusted)
	}
	return afterSeconds, trusted, nil
}
