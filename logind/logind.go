// Package logind follows the remote sessions that systemd-logind holds (org.freedesktop.login1 on the
// system bus) and reports each one whose RemoteHost is an IP address, so that gaolerd can trust an
// address from which someone is logged in: at start (an admin logged in before gaolerd started) and
// whenever a session appears (the SessionNew signal).
//
// It reports; it decides nothing. A RemoteHost that is a name rather than an address is ignored,
// never resolved: a name is what the client or a reverse lookup said, and resolving it would let
// whoever controls the name choose the address. The package knows sessions, not jails or trust.
// Losing the bus, or a host without logind, is a notice: the watcher waits for logind to appear on
// the bus, and for the bus to come back. See org.freedesktop.login1(5).
package logind

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// The names of logind's API, as org.freedesktop.login1(5) documents them.
const (
	BusName          = "org.freedesktop.login1"
	ManagerPath      = dbus.ObjectPath("/org/freedesktop/login1")
	ManagerInterface = "org.freedesktop.login1.Manager"
	SessionInterface = "org.freedesktop.login1.Session"

	nameOwnerChanged = "org.freedesktop.DBus.NameOwnerChanged"
	sessionNew       = ManagerInterface + ".SessionNew"
)

// Session is a remote session logind holds, whose RemoteHost is an IP address.
type Session struct {
	ID      string
	User    string     // the session's user (Name)
	Service string     // the PAM service that opened it: "sshd" for an ssh login
	Addr    netip.Addr // RemoteHost, parsed (zone dropped, IPv4-mapped IPv6 as IPv4)
	Started time.Time  // the session's Timestamp; zero when logind did not say
}

// Options configure Watch.
type Options struct {
	// Connect opens the system bus; nil is dbus.ConnectSystemBus (DBUS_SYSTEM_BUS_ADDRESS, else the
	// standard socket).
	Connect func() (*dbus.Conn, error)
	// Login is called, on Watch's goroutine, for each remote session: those open when Watch (or a
	// reconnection) starts, and each new one.
	Login func(Session)
	// Notice hears of the bus lost or back, and of logind missing; nil discards.
	Notice func(msg string)
	// Backoff is the first pause before reconnecting to a lost bus (default 1s; it doubles up to 30s).
	Backoff time.Duration
}

const maxBackoff = 30 * time.Second

// Watch reports remote sessions until ctx is done.
func Watch(ctx context.Context, o Options) {
	if o.Connect == nil {
		o.Connect = func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }
	}
	if o.Notice == nil {
		o.Notice = func(string) {}
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	backoff := o.Backoff
	down := false
	for ctx.Err() == nil {
		conn, err := o.Connect()
		if err == nil {
			if down {
				o.Notice("logind: the system bus is back")
				down = false
			}
			backoff = o.Backoff
			err = follow(ctx, conn, o)
			conn.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if !down {
			o.Notice(fmt.Sprintf("logind: %v; remote sessions are not followed until the system bus is back", err))
			down = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow lists the sessions and reports each new one, on conn, until ctx is done (nil) or the
// connection breaks (its error).
func follow(ctx context.Context, conn *dbus.Conn, o Options) error {
	signals := make(chan *dbus.Signal, 64)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)
	// Listen before listing, so that no session falls between the list and the first signal.
	if err := conn.AddMatchSignal(dbus.WithMatchSender(BusName), dbus.WithMatchInterface(ManagerInterface),
		dbus.WithMatchMember("SessionNew"), dbus.WithMatchObjectPath(ManagerPath)); err != nil {
		return fmt.Errorf("subscribing to SessionNew: %w", err)
	}
	if err := conn.AddMatchSignal(dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, BusName)); err != nil {
		return fmt.Errorf("subscribing to NameOwnerChanged: %w", err)
	}
	owner := ownerOf(conn)
	if owner == "" {
		o.Notice("logind: " + BusName + " is not on the system bus (no systemd-logind): remote sessions are not followed until it starts")
	} else {
		listSessions(conn, o)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.Context().Done():
			return errors.New("connection to the system bus closed")
		case sig := <-signals:
			if sig == nil {
				continue
			}
			switch sig.Name {
			case nameOwnerChanged:
				if len(sig.Body) == 3 && sig.Body[0] == BusName {
					owner, _ = sig.Body[2].(string)
					if owner != "" {
						o.Notice("logind: " + BusName + " appeared on the system bus; following its sessions")
						listSessions(conn, o)
					}
				}
			case sessionNew:
				// Only logind's own signals count: anyone may send a unicast signal to this
				// connection. Even a forged one would only make us read a real session of logind.
				if owner == "" || sig.Sender != owner || len(sig.Body) != 2 {
					continue
				}
				if path, ok := sig.Body[1].(dbus.ObjectPath); ok {
					report(conn, path, o)
				}
			}
		}
	}
}

// ownerOf returns the unique name that owns BusName, or "".
func ownerOf(conn *dbus.Conn) string {
	var owner string
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, BusName).Store(&owner); err != nil {
		return ""
	}
	return owner
}

// listedSession is one element of ListSessions' a(susso).
type listedSession struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// listSessions reports the remote sessions open now.
func listSessions(conn *dbus.Conn, o Options) {
	var list []listedSession
	if err := conn.Object(BusName, ManagerPath).Call(ManagerInterface+".ListSessions", 0).Store(&list); err != nil {
		o.Notice(fmt.Sprintf("logind: listing sessions: %v", err))
		return
	}
	for _, s := range list {
		report(conn, s.Path, o)
	}
}

// report reads the session at path and reports it if it is remote from an address.
func report(conn *dbus.Conn, path dbus.ObjectPath, o Options) {
	var props map[string]dbus.Variant
	if err := conn.Object(BusName, path).Call("org.freedesktop.DBus.Properties.GetAll", 0, SessionInterface).Store(&props); err != nil {
		return // the session ended already, or logind is going away: nothing to trust
	}
	s, ok := sessionOf(props)
	if ok && o.Login != nil {
		o.Login(s)
	}
}

// sessionOf makes a Session of a session's properties; ok is false for a local session, or a
// RemoteHost that is not an IP address.
func sessionOf(props map[string]dbus.Variant) (Session, bool) {
	str := func(name string) string {
		s, _ := props[name].Value().(string)
		return s
	}
	if remote, _ := props["Remote"].Value().(bool); !remote {
		return Session{}, false
	}
	addr, ok := ParseRemoteHost(str("RemoteHost"))
	if !ok {
		return Session{}, false
	}
	s := Session{ID: str("Id"), User: str("Name"), Service: str("Service"), Addr: addr}
	if usec, ok := props["Timestamp"].Value().(uint64); ok && usec > 0 {
		s.Started = time.UnixMicro(int64(usec))
	}
	return s, true
}

// ParseRemoteHost returns the address a session's RemoteHost holds, and false when it is a name (or
// empty): names are never resolved.
func ParseRemoteHost(h string) (netip.Addr, bool) {
	h = strings.TrimSpace(h)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
