package bus

import (
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// property describes one D-Bus property: its name, a value of its type (for the signature) and whether
// it announces changes with PropertiesChanged.
type property struct {
	name string
	zero any
	emit prop.EmitType
}

// managerProperties are the Manager's properties. Reader changes by the second, so it is read on
// demand and never announced.
var managerProperties = []property{
	{"Version", "", prop.EmitConst},
	{"Jails", []dbus.ObjectPath{}, prop.EmitTrue},
	{"Reader", "", prop.EmitFalse},
}

// jailProperties are a jail's properties. The settings change only on reload, the counters all the time;
// both are announced, the counters coalesced.
var jailProperties = []property{
	{"Name", "", prop.EmitConst},
	{"Filter", "", prop.EmitTrue},
	{"JournalMatch", []string{}, prop.EmitTrue},
	{"FindTime", uint64(0), prop.EmitTrue},
	{"BanTime", uint64(0), prop.EmitTrue},
	{"MaxRetry", uint32(0), prop.EmitTrue},
	{"CurrentlyFailed", uint32(0), prop.EmitTrue},
	{"TotalFailed", uint64(0), prop.EmitTrue},
	{"CurrentlyBanned", uint32(0), prop.EmitTrue},
	{"TotalBanned", uint64(0), prop.EmitTrue},
}

func introspectProperties(ps []property) []introspect.Property {
	out := make([]introspect.Property, 0, len(ps))
	for _, p := range ps {
		out = append(out, (&prop.Prop{Value: p.zero, Emit: p.emit}).Introspection(p.name))
	}
	return out
}

func arg(name, typ, dir string) introspect.Arg {
	return introspect.Arg{Name: name, Type: typ, Direction: dir}
}

var managerInterface = introspect.Interface{
	Name: ManagerInterface,
	Methods: []introspect.Method{
		{Name: "Reload"},
		{Name: "Metrics", Args: []introspect.Arg{arg("text", "s", "out")}},
		whyMethod,
		fleetMethod,
	},
	Signals:    managerSignals,
	Properties: introspectProperties(managerProperties),
}

var jailInterface = introspect.Interface{
	Name: JailInterface,
	Methods: []introspect.Method{
		{Name: "Ban", Args: []introspect.Arg{arg("address", "s", "in"), arg("seconds", "t", "in")}},
		{Name: "BanEx", Args: []introspect.Arg{arg("address", "s", "in"), arg("seconds", "t", "in"),
			arg("prefix", "s", "out"), arg("banned_at_usec", "t", "out"), arg("expires_usec", "t", "out"),
			arg("ban_count", "u", "out")}},
		{Name: "Unban", Args: []introspect.Arg{arg("address", "s", "in")}},
		{Name: "UnbanEx", Args: []introspect.Arg{arg("address", "s", "in"),
			arg("prefix", "s", "out"), arg("banned_at_usec", "t", "out"), arg("expires_usec", "t", "out"),
			arg("ban_count", "u", "out")}},
		{Name: "UnbanAll", Args: []introspect.Arg{arg("count", "u", "out")}},
		{Name: "ListBans", Args: []introspect.Arg{arg("bans", "a(sttu)", "out")}},
		listBanOriginsMethod,
		listBansExMethod,
		listBansPageMethod,
	},
	Properties: introspectProperties(jailProperties),
}

// introspectManager returns the introspection document of the manager object.
func introspectManager() string {
	return string(introspect.NewIntrospectable(&introspect.Node{
		Name:       string(ManagerPath),
		Interfaces: []introspect.Interface{managerInterface, prop.IntrospectData},
		Children:   []introspect.Node{{Name: "jail"}},
	}))
}

// introspectJail returns the introspection document of a jail object.
func introspectJail(p dbus.ObjectPath, ifaces []introspect.Interface) string {
	return string(introspect.NewIntrospectable(&introspect.Node{
		Name:       string(p),
		Interfaces: ifaces,
	}))
}

// introspectJailParent returns the introspection document of /io/github/gaoler/Gaoler1/jail, which has
// no interface of its own, only the jails as children.
func introspectJailParent(jails []string) string {
	n := &introspect.Node{Name: string(JailPathPrefix)}
	for _, j := range jails {
		n.Children = append(n.Children, introspect.Node{Name: escapeLabel(j)})
	}
	return string(introspect.NewIntrospectable(n))
}
