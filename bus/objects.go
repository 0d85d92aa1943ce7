package bus

import (
	"fmt"
	"reflect"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// managerMethods are the methods of io.github.gaoler.Gaoler1.Manager.
type managerMethods struct{ s *Server }

// Reload asks the daemon to re-read its configuration.
func (m managerMethods) Reload() *dbus.Error { return dbusError(m.s.b.Reload()) }

// jailMethods are the methods of io.github.gaoler.Gaoler1.Jail, for every jail: the jail is the one
// the call's object path names.
type jailMethods struct{ s *Server }

// Ban bans address in the jail for seconds (0: the jail's bantime), and replies with nothing (the
// SPEC's Ban(s, t); BanEx replies with the ban).
func (j jailMethods) Ban(msg dbus.Message, address string, seconds uint64) *dbus.Error {
	_, err := j.ban(msg, address, seconds)
	return err
}

// BanEx is Ban, extended as systemd extends its methods (...Ex): it replies with the ban now in the
// kernel, as ListBans lists it: the canonical prefix banned (which may differ from address: an
// IPv4-mapped address is banned as IPv4, a bare IPv6 address as its /ipv6_prefix), banned-at and
// expiry in microseconds since the epoch, and the ban count.
func (j jailMethods) BanEx(msg dbus.Message, address string, seconds uint64) (string, uint64, uint64, uint32, *dbus.Error) {
	b, err := j.ban(msg, address, seconds)
	return b.Address, b.BannedAtUsec, b.ExpiresUsec, b.BanCount, err
}

func (j jailMethods) ban(msg dbus.Message, address string, seconds uint64) (BanInfo, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return BanInfo{}, err
	}
	if !validAddress(address) {
		return BanInfo{}, invalidAddress(address)
	}
	if mb, ok := j.s.b.(ManualBackend); ok {
		uid, err := callerUID(j.s.current(), msg)
		if err != nil {
			return BanInfo{}, dbusError(err)
		}
		b, e := mb.BanBy(name, address, seconds, uid)
		if e != nil {
			return BanInfo{}, dbusError(e)
		}
		return b, nil
	}
	b, e := j.s.b.Ban(name, address, seconds)
	if e != nil {
		return BanInfo{}, dbusError(e)
	}
	return b, nil
}

// Unban lifts the ban of address in the jail, and replies with nothing (the SPEC's Unban(s); UnbanEx
// replies with the ban lifted).
func (j jailMethods) Unban(msg dbus.Message, address string) *dbus.Error {
	_, err := j.unban(msg, address)
	return err
}

// UnbanEx is Unban that replies with the ban lifted, as BanEx replies with the ban made: the canonical
// prefix that left the kernel (which may differ from address: ::ffff:192.0.2.7 and 192.0.2.7/32 lift
// 192.0.2.7, an address inside a wider ban lifts that prefix), its banned-at and expiry in
// microseconds since the epoch, and its ban count.
func (j jailMethods) UnbanEx(msg dbus.Message, address string) (string, uint64, uint64, uint32, *dbus.Error) {
	b, err := j.unban(msg, address)
	return b.Address, b.BannedAtUsec, b.ExpiresUsec, b.BanCount, err
}

func (j jailMethods) unban(msg dbus.Message, address string) (BanInfo, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return BanInfo{}, err
	}
	if !validAddress(address) {
		return BanInfo{}, invalidAddress(address)
	}
	var b BanInfo
	var e error
	if mb, ok := j.s.b.(ManualBackend); ok {
		uid, err := callerUID(j.s.current(), msg)
		if err != nil {
			return BanInfo{}, dbusError(err)
		}
		b, e = mb.UnbanBy(name, address, uid)
	} else {
		b, e = j.s.b.Unban(name, address)
	}
	if e != nil {
		return BanInfo{}, dbusError(e)
	}
	return b, nil
}

// UnbanAll lifts every ban of the jail and returns how many there were.
func (j jailMethods) UnbanAll(msg dbus.Message) (uint32, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return 0, err
	}
	n, e := j.s.b.UnbanAll(name)
	return n, dbusError(e)
}

// ListBans returns the jail's active bans as a(sttu).
func (j jailMethods) ListBans(msg dbus.Message) ([]BanInfo, *dbus.Error) {
	name, err := jailOf(msg)
	if err != nil {
		return nil, err
	}
	bans, e := j.s.b.ListBans(name)
	if e != nil {
		return nil, dbusError(e)
	}
	if bans == nil {
		bans = []BanInfo{}
	}
	return bans, nil
}

func invalidAddress(address string) *dbus.Error {
	return dbusError(fmt.Errorf("%w: %q is not an IP address or prefix", ErrInvalidAddress, address))
}

// jailOf returns the name of the jail that msg is addressed to, or NoSuchJail when its path names none.
func jailOf(msg dbus.Message) (string, *dbus.Error) {
	p, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	name, ok := JailName(p)
	if !ok {
		return "", dbusError(fmt.Errorf("%w: no jail at %s", ErrNoSuchJail, p))
	}
	return name, nil
}

// properties implements org.freedesktop.DBus.Properties for the manager and every jail. The values are
// read from the Backend on each call, so a Get is never stale; all properties are read-only.
type properties struct{ s *Server }

// Get returns one property.
func (p properties) Get(msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	values, err := p.values(msg, iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := values[name]
	if !ok {
		return dbus.Variant{}, prop.ErrPropNotFound
	}
	return dbus.MakeVariant(v), nil
}

// GetAll returns every property of iface.
func (p properties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	values, err := p.values(msg, iface)
	if err != nil {
		return nil, err
	}
	out := make(map[string]dbus.Variant, len(values))
	for k, v := range values {
		out[k] = dbus.MakeVariant(v)
	}
	return out, nil
}

// Set refuses: every property is read-only.
func (p properties) Set(msg dbus.Message, iface, name string, v dbus.Variant) *dbus.Error {
	if _, err := p.values(msg, iface); err != nil {
		return err
	}
	return prop.ErrReadOnly
}

// values returns the properties of iface on the object msg is addressed to. As the D-Bus
// specification allows, an empty iface means the object's own interface.
func (p properties) values(msg dbus.Message, iface string) (map[string]any, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	if path == ManagerPath {
		if iface != ManagerInterface && iface != "" {
			return nil, prop.ErrIfaceNotFound
		}
		return map[string]any{
			"Version": p.s.b.Version(),
			"Jails":   jailPaths(p.s.b.JailNames()),
			"Reader":  p.s.b.Reader(),
		}, nil
	}
	name, err := jailOf(msg)
	if err != nil {
		return nil, err
	}
	if iface == TrustInterface {
		return p.s.trustValues(name)
	}
	if iface != JailInterface && iface != "" {
		return nil, prop.ErrIfaceNotFound
	}
	info, e := p.s.b.Jail(name)
	if e != nil {
		return nil, dbusError(e)
	}
	return jailValues(info), nil
}

// introspectable implements org.freedesktop.DBus.Introspectable for the manager, the jails' parent and
// every jail.
type introspectable struct{ s *Server }

// Introspect returns the introspection document of the object msg is addressed to.
func (i introspectable) Introspect(msg dbus.Message) (string, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	switch path {
	case ManagerPath:
		return introspectManager(), nil
	case JailPathPrefix:
		return introspectJailParent(i.s.b.JailNames()), nil
	}
	name, err := jailOf(msg)
	if err != nil {
		return "", err
	}
	if _, e := i.s.b.Jail(name); e != nil {
		return "", dbusError(e)
	}
	return introspectJail(path, i.s.jailInterfaces()), nil
}

func jailPaths(names []string) []dbus.ObjectPath {
	paths := make([]dbus.ObjectPath, 0, len(names))
	for _, n := range names {
		paths = append(paths, JailPath(n))
	}
	return paths
}

func jailValues(j JailInfo) map[string]any {
	match := j.JournalMatch
	if match == nil {
		match = []string{}
	}
	return map[string]any{
		"Name":            j.Name,
		"Filter":          j.Filter,
		"JournalMatch":    match,
		"FindTime":        j.FindTime,
		"BanTime":         j.BanTime,
		"MaxRetry":        j.MaxRetry,
		"CurrentlyFailed": j.CurrentlyFailed,
		"TotalFailed":     j.TotalFailed,
		"CurrentlyBanned": j.CurrentlyBanned,
		"TotalBanned":     j.TotalBanned,
	}
}

// changedValues returns the announced properties whose values in next differ from prev (all of them
// when prev is nil).
func changedValues(ps []property, prev, next map[string]any) map[string]dbus.Variant {
	out := map[string]dbus.Variant{}
	for _, p := range ps {
		if p.emit != prop.EmitTrue {
			continue
		}
		v := next[p.name]
		if prev != nil && reflect.DeepEqual(prev[p.name], v) {
			continue
		}
		out[p.name] = dbus.MakeVariant(v)
	}
	return out
}
