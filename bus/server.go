package bus

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Default timings of a Server.
const (
	// DefaultCoalesce is how long the server gathers counter changes before it announces them: a jail
	// emits at most one PropertiesChanged per interval however many failures arrive.
	DefaultCoalesce = 250 * time.Millisecond
	// maxBackoff bounds the wait between attempts to reach the bus.
	maxBackoff = 15 * time.Second
	minBackoff = 100 * time.Millisecond
)

// Server exports a Backend on the bus. Create it with NewServer, run Serve on a goroutine of its own,
// and call Announce, CountersChanged and JailsChanged from anywhere, the daemon's main loop
// included: they never call the Backend (which would wait for that loop), never wait for the bus, and
// do nothing while it is unreachable. The Backend is called from godbus's goroutines (method calls,
// property reads) and from the goroutine that sends the coalesced PropertiesChanged.
type Server struct {
	b        Backend
	warn     func(string)
	coalesce time.Duration

	mu    sync.Mutex
	conn  *dbus.Conn                // the connection that owns the name; nil while there is none
	dirty map[string]bool           // jails whose counters changed since the last announcement
	jails bool                      // jails were added, removed or reconfigured since the last announcement
	last  map[string]map[string]any // per jail, the property values last announced
	kick  chan struct{}             // wakes the announcer; capacity 1
}

// Option configures a Server.
type Option func(*Server)

// WithWarn sets the function that receives warnings about the bus (lost, unreachable, back). The
// default discards them.
func WithWarn(warn func(msg string)) Option { return func(s *Server) { s.warn = warn } }

// WithCoalesce sets how long counter changes are gathered before PropertiesChanged is sent
// (DefaultCoalesce).
func WithCoalesce(d time.Duration) Option { return func(s *Server) { s.coalesce = d } }

// NewServer returns a server for b; nothing is exported until Serve runs.
func NewServer(b Backend, opts ...Option) *Server {
	s := &Server{
		b:        b,
		warn:     func(string) {},
		coalesce: DefaultCoalesce,
		dirty:    map[string]bool{},
		last:     map[string]map[string]any{},
		kick:     make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SystemBus connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the standard socket); it is the
// connect function the daemon passes to Serve.
func SystemBus() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }

// Serve keeps the service on the bus until ctx is cancelled. It connects with connect, exports the
// objects and requests BusName; when the connection breaks (the bus restarts) or the name is lost, or
// when connecting fails (no bus yet, the name taken), it tries again after a pause that doubles up to
// five seconds. The daemon works without the bus meanwhile: only the API is missing. Serve returns when
// ctx is done, after releasing the name and closing the connection.
func (s *Server) Serve(ctx context.Context, connect func() (*dbus.Conn, error)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.announce(ctx)
	}()
	defer wg.Wait()

	backoff := minBackoff
	down := false // a warning about the bus being unreachable was given
	for ctx.Err() == nil {
		conn, err := connect()
		if err == nil {
			err = s.attach(conn)
			if err != nil {
				conn.Close()
			}
		}
		if err != nil {
			if !down {
				s.warn(fmt.Sprintf("D-Bus API unavailable, retrying: %v", err))
				down = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if down {
			s.warn("D-Bus API available again as " + BusName)
			down = false
		}
		backoff = minBackoff
		lost := s.hold(ctx, conn)
		if lost != nil && ctx.Err() == nil {
			s.warn(fmt.Sprintf("D-Bus API lost, reconnecting: %v", lost))
			down = true
		}
	}
}

// attach exports the objects on conn and takes BusName.
func (s *Server) attach(conn *dbus.Conn) error {
	exports := []struct {
		v       any
		path    dbus.ObjectPath
		iface   string
		subtree bool
	}{
		{managerMethods{s}, ManagerPath, ManagerInterface, false},
		{properties{s}, ManagerPath, propertiesInterface, false},
		{introspectable{s}, ManagerPath, introspectableIntf, false},
		// One registration serves every jail (and answers NoSuchJail below the parent for the others),
		// so a reload that adds or removes jails needs no export or unexport.
		{jailMethods{s}, JailPathPrefix, JailInterface, true},
		{properties{s}, JailPathPrefix, propertiesInterface, true},
		{introspectable{s}, JailPathPrefix, introspectableIntf, true},
	}
	for _, e := range exports {
		var err error
		if e.subtree {
			err = conn.ExportSubtree(e.v, e.path, e.iface)
		} else {
			err = conn.Export(e.v, e.path, e.iface)
		}
		if err != nil {
			return fmt.Errorf("export %s on %s: %w", e.iface, e.path, err)
		}
	}
	if err := s.exportTrust(conn); err != nil {
		return err
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request name %s: %w", BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("request name %s: %s", BusName, reply)
	}
	s.mu.Lock()
	s.conn = conn
	s.last = map[string]map[string]any{}
	s.mu.Unlock()
	return nil
}

// hold waits until ctx is done (it then gives the name back and returns nil), the connection breaks or
// the name is lost (it returns why).
func (s *Server) hold(ctx context.Context, conn *dbus.Conn) error {
	signals := make(chan *dbus.Signal, 8)
	conn.Signal(signals)
	defer func() {
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		conn.RemoveSignal(signals)
		conn.Close()
	}()
	for {
		select {
		case <-ctx.Done():
			conn.ReleaseName(BusName)
			return nil
		case <-conn.Context().Done():
			return errors.New("connection to the bus closed")
		case sig := <-signals:
			if sig != nil && sig.Name == nameLostSignalName && len(sig.Body) > 0 && sig.Body[0] == BusName {
				return errors.New("name " + BusName + " lost")
			}
		}
	}
}

// current returns the connection that owns the name, or nil.
func (s *Server) current() *dbus.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// CountersChanged tells the server that a jail's counters changed. The change is announced with one
// PropertiesChanged per jail per coalescing interval, carrying the properties whose values differ from
// the last announcement.
func (s *Server) CountersChanged(jail string) {
	s.mu.Lock()
	s.dirty[jail] = true
	s.mu.Unlock()
	s.wake()
}

// JailsChanged tells the server that jails were added, removed or reconfigured (after a reload): the
// Manager's Jails and every jail's changed settings are announced.
func (s *Server) JailsChanged() {
	s.mu.Lock()
	s.jails = true
	s.mu.Unlock()
	s.wake()
}

func (s *Server) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// announce sends the pending PropertiesChanged signals: at once when the last were sent more than an
// interval ago, else when the interval is over, so a flood of changes costs one signal per interval.
func (s *Server) announce(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if wait := time.Until(last.Add(s.coalesce)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		s.flush()
	}
}

// flush announces what changed since the last flush.
func (s *Server) flush() {
	s.mu.Lock()
	conn, dirty, jails := s.conn, s.dirty, s.jails
	s.dirty, s.jails = map[string]bool{}, false
	s.mu.Unlock()
	if conn == nil {
		return
	}
	if jails {
		names := s.b.JailNames()
		conn.Emit(ManagerPath, propertiesChangedName, ManagerInterface,
			map[string]dbus.Variant{"Jails": dbus.MakeVariant(jailPaths(names))}, []string{})
		for _, n := range names {
			dirty[n] = true
		}
	}
	for name := range dirty {
		info, err := s.b.Jail(name)
		if err != nil {
			s.mu.Lock()
			delete(s.last, name)
			s.mu.Unlock()
			continue
		}
		values := jailValues(info)
		s.mu.Lock()
		prev := s.last[name]
		s.last[name] = values
		s.mu.Unlock()
		changed := changedValues(jailProperties, prev, values)
		if len(changed) > 0 {
			conn.Emit(JailPath(name), propertiesChangedName, JailInterface, changed, []string{})
		}
	}
}

// validAddress reports whether s is an IP address or prefix, as Ban and Unban take them.
func validAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}
