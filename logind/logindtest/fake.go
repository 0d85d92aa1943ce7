// Package logindtest serves a fake org.freedesktop.login1 on a test's bus, for the tests of the
// logind package and of the daemon: a Manager with ListSessions and the SessionNew and SessionRemoved
// signals, and sessions with the properties logind gives them.
package logindtest

import (
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
)

// Names of logind's API (org.freedesktop.login1(5)).
const (
	BusName          = "org.freedesktop.login1"
	ManagerPath      = dbus.ObjectPath("/org/freedesktop/login1")
	ManagerInterface = "org.freedesktop.login1.Manager"
	SessionInterface = "org.freedesktop.login1.Session"
	sessionPrefix    = "/org/freedesktop/login1/session"
)

// Policy lets root own org.freedesktop.login1 on a private system bus and call it; pass it to
// testenv.StartBus.
const Policy = `<policy user="root"><allow own="org.freedesktop.login1"/><allow send_destination="org.freedesktop.login1"/></policy>`

// Session is a session the fake holds.
type Session struct {
	ID, User, Service, RemoteHost string
	Remote                        bool
}

// Logind is a fake logind on a bus.
type Logind struct {
	conn *dbus.Conn

	mu       sync.Mutex
	sessions map[dbus.ObjectPath]map[string]dbus.Variant
	order    []dbus.ObjectPath
}

// Start connects to the bus at addr, exports the fake and takes org.freedesktop.login1; it closes
// its connection (giving the name back) at the end of the test.
func Start(t testing.TB, addr string) *Logind {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	l := &Logind{conn: conn, sessions: map[dbus.ObjectPath]map[string]dbus.Variant{}}
	if err := conn.Export(manager{l}, ManagerPath, ManagerInterface); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportSubtree(properties{l}, sessionPrefix, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("logindtest: RequestName %s: %v %v", BusName, reply, err)
	}
	t.Cleanup(func() { conn.Close() })
	return l
}

// Path returns the object path of the session id.
func Path(id string) dbus.ObjectPath { return dbus.ObjectPath(sessionPrefix + "/_3" + id) }

// Add adds a session without announcing it (as one open before the watcher started).
func (l *Logind) Add(s Session) {
	p := Path(s.ID)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions[p] = map[string]dbus.Variant{
		"Id": dbus.MakeVariant(s.ID), "Name": dbus.MakeVariant(s.User), "Service": dbus.MakeVariant(s.Service),
		"Remote": dbus.MakeVariant(s.Remote), "RemoteHost": dbus.MakeVariant(s.RemoteHost),
		"RemoteUser": dbus.MakeVariant(""), "Type": dbus.MakeVariant("tty"), "Class": dbus.MakeVariant("user"),
		"Timestamp": dbus.MakeVariant(uint64(1_764_064_800_000_000)),
	}
	l.order = append(l.order, p)
}

// New adds a session and emits SessionNew for it, as logind does when one opens.
func (l *Logind) New(s Session) {
	l.Add(s)
	l.Announce(s.ID)
}

// Announce emits SessionNew for the session id.
func (l *Logind) Announce(id string) {
	l.conn.Emit(ManagerPath, ManagerInterface+".SessionNew", id, Path(id))
}

// Remove drops a session and emits SessionRemoved.
func (l *Logind) Remove(id string) {
	p := Path(id)
	l.mu.Lock()
	delete(l.sessions, p)
	for i, q := range l.order {
		if q == p {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	l.conn.Emit(ManagerPath, ManagerInterface+".SessionRemoved", id, p)
}

type manager struct{ l *Logind }

// listed is one element of ListSessions' a(susso): id, uid, user, seat, path.
type listed struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// ListSessions returns the sessions as a(susso).
func (m manager) ListSessions() ([]listed, *dbus.Error) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	out := []listed{}
	for _, p := range m.l.order {
		props := m.l.sessions[p]
		id, _ := props["Id"].Value().(string)
		user, _ := props["Name"].Value().(string)
		out = append(out, listed{ID: id, UID: 1000, User: user, Path: p})
	}
	return out, nil
}

type properties struct{ l *Logind }

// GetAll answers for the session the call's path names.
func (p properties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	props, ok := p.l.sessions[path]
	if !ok || iface != SessionInterface {
		return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownObject", []any{"no session at " + string(path)})
	}
	return props, nil
}
