package logind

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/internal/testenv"
)

// loginPolicy lets root own the fake logind's name on the private system bus and call it.
const loginPolicy = `<policy user="root"><allow own="org.freedesktop.login1"/><allow send_destination="org.freedesktop.login1"/></policy>`

// fakeLogind serves a small org.freedesktop.login1 on a bus: a Manager with ListSessions and the
// SessionNew and SessionRemoved signals, and sessions with their properties.
type fakeLogind struct {
	conn *dbus.Conn

	mu       sync.Mutex
	sessions map[dbus.ObjectPath]map[string]dbus.Variant
	order    []dbus.ObjectPath
}

type fakeManager struct{ f *fakeLogind }

// ListSessions returns a(susso): id, uid, user, seat, path.
func (m fakeManager) ListSessions() ([]listedSession, *dbus.Error) {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	out := []listedSession{}
	for _, p := range m.f.order {
		props := m.f.sessions[p]
		id, _ := props["Id"].Value().(string)
		user, _ := props["Name"].Value().(string)
		out = append(out, listedSession{ID: id, UID: 1000, User: user, Path: p})
	}
	return out, nil
}

type fakeProps struct{ f *fakeLogind }

// GetAll answers for the session the call's path names.
func (p fakeProps) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	props, ok := p.f.sessions[path]
	if !ok || iface != SessionInterface {
		return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownObject", []any{"no session at " + string(path)})
	}
	return props, nil
}

// startFakeLogind connects to addr, exports the fake and takes org.freedesktop.login1.
func startFakeLogind(t *testing.T, addr string) *fakeLogind {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLogind{conn: conn, sessions: map[dbus.ObjectPath]map[string]dbus.Variant{}}
	if err := conn.Export(fakeManager{f}, ManagerPath, ManagerInterface); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportSubtree(fakeProps{f}, "/org/freedesktop/login1/session", "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName %s: %v %v", BusName, reply, err)
	}
	t.Cleanup(func() { conn.Close() })
	return f
}

// add adds a session; with announce, it emits SessionNew for it.
func (f *fakeLogind) add(id, user, service, remoteHost string, remote, announce bool) {
	p := dbus.ObjectPath("/org/freedesktop/login1/session/_3" + id)
	f.mu.Lock()
	f.sessions[p] = map[string]dbus.Variant{
		"Id": dbus.MakeVariant(id), "Name": dbus.MakeVariant(user), "Service": dbus.MakeVariant(service),
		"Remote": dbus.MakeVariant(remote), "RemoteHost": dbus.MakeVariant(remoteHost),
		"RemoteUser": dbus.MakeVariant(""), "Type": dbus.MakeVariant("tty"), "Class": dbus.MakeVariant("user"),
		"Timestamp": dbus.MakeVariant(uint64(1_764_064_800_000_000)),
	}
	f.order = append(f.order, p)
	f.mu.Unlock()
	if announce {
		f.conn.Emit(ManagerPath, sessionNew, id, p)
	}
}

// remove drops a session and emits SessionRemoved.
func (f *fakeLogind) remove(id string) {
	p := dbus.ObjectPath("/org/freedesktop/login1/session/_3" + id)
	f.mu.Lock()
	delete(f.sessions, p)
	f.mu.Unlock()
	f.conn.Emit(ManagerPath, ManagerInterface+".SessionRemoved", id, p)
}

// recorder collects what Watch reports.
type recorder struct {
	mu      sync.Mutex
	logins  []string
	notices []string
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 100)} }

func (r *recorder) login(s Session) {
	r.mu.Lock()
	r.logins = append(r.logins, fmt.Sprintf("%s %s %s %s", s.ID, s.User, s.Service, s.Addr))
	r.mu.Unlock()
	r.changed <- struct{}{}
}

func (r *recorder) notice(m string) {
	r.mu.Lock()
	r.notices = append(r.notices, m)
	r.mu.Unlock()
	r.changed <- struct{}{}
}

// wait waits until cond holds on the logins and notices (10s at most).
func (r *recorder) wait(t *testing.T, what string, cond func(logins, notices []string) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.logins, r.notices)
		logins, notices := append([]string(nil), r.logins...), append([]string(nil), r.notices...)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("waiting for %s: logins %q, notices %q", what, logins, notices)
		}
	}
}

func watch(t *testing.T, addr string, r *recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, Options{
			Connect: func() (*dbus.Conn, error) { return dbus.Connect(addr) },
			Login:   r.login, Notice: r.notice, Backoff: 50 * time.Millisecond,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
}

func has(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestWatchReportsRemoteSessions(t *testing.T) {
	testenv.RequireRoot(t)
	bus := testenv.StartBus(t, loginPolicy)
	f := startFakeLogind(t, bus.Address())
	f.add("1", "admin", "sshd", "192.0.2.50", true, false)
	f.add("2", "local", "login", "", false, false)
	f.add("3", "named", "sshd", "office.example.org", true, false)
	r := newRecorder()
	watch(t, bus.Address(), r)
	r.wait(t, "the session open at start", func(l, _ []string) bool { return has(l, "1 admin sshd 192.0.2.50") })

	f.add("4", "admin6", "sshd", "2001:db8::5", true, true)
	f.add("5", "named", "sshd", "host.example.org", true, true)
	f.add("6", "mapped", "sshd", "::ffff:198.51.100.6", true, true)
	f.remove("1")
	r.wait(t, "the new sessions", func(l, _ []string) bool {
		return has(l, "4 admin6 sshd 2001:db8::5") && has(l, "6 mapped sshd 198.51.100.6")
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.logins) != 3 {
		t.Fatalf("reported %q: want sessions 1, 4 and 6 only (no local session, no host name)", r.logins)
	}
}

func TestWatchWithoutLogindThenLogind(t *testing.T) {
	testenv.RequireRoot(t)
	bus := testenv.StartBus(t, loginPolicy)
	r := newRecorder()
	watch(t, bus.Address(), r)
	r.wait(t, "a notice that logind is missing", func(_, n []string) bool { return has(n, "not on the system bus") })
	f := startFakeLogind(t, bus.Address())
	f.add("7", "admin", "sshd", "203.0.113.7", true, false)
	// ListSessions may run before the session is added; the signal covers that case.
	f.conn.Emit(ManagerPath, sessionNew, "7", dbus.ObjectPath("/org/freedesktop/login1/session/_37"))
	r.wait(t, "the session once logind appeared", func(l, _ []string) bool { return has(l, "7 admin sshd 203.0.113.7") })
}

func TestWatchSurvivesTheBusRestarting(t *testing.T) {
	testenv.RequireRoot(t)
	bus := testenv.StartBus(t, loginPolicy)
	f := startFakeLogind(t, bus.Address())
	f.add("1", "admin", "sshd", "192.0.2.51", true, false)
	r := newRecorder()
	watch(t, bus.Address(), r)
	r.wait(t, "the first session", func(l, _ []string) bool { return has(l, "192.0.2.51") })
	bus.Stop()
	r.wait(t, "a notice of the bus lost", func(_, n []string) bool { return has(n, "not followed until the system bus is back") })
	bus.Start()
	f2 := startFakeLogind(t, bus.Address())
	f2.add("2", "admin", "sshd", "192.0.2.52", true, false)
	r.wait(t, "the session after the bus came back", func(l, n []string) bool {
		return has(l, "192.0.2.52") && has(n, "the system bus is back")
	})
}

func TestParseRemoteHost(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7": "192.0.2.7", "2001:db8::1": "2001:db8::1", "::ffff:192.0.2.7": "192.0.2.7",
		"fe80::1%eth0": "fe80::1", "[2001:db8::2]": "2001:db8::2", " 198.51.100.1 ": "198.51.100.1",
		"host.example.org": "", "": "", "192.0.2.7.example.org": "", "localhost": "",
	} {
		a, ok := ParseRemoteHost(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("ParseRemoteHost(%q) = %q, want %q", in, got, want)
		}
	}
	if _, ok := sessionOf(map[string]dbus.Variant{"Remote": dbus.MakeVariant(false), "RemoteHost": dbus.MakeVariant("192.0.2.1")}); ok {
		t.Error("a local session with a RemoteHost was reported")
	}
	s, ok := sessionOf(map[string]dbus.Variant{"Remote": dbus.MakeVariant(true), "RemoteHost": dbus.MakeVariant("192.0.2.1"),
		"Name": dbus.MakeVariant("u"), "Service": dbus.MakeVariant("sshd"), "Timestamp": dbus.MakeVariant(uint64(1_000_000))})
	if !ok || s.Addr != netip.MustParseAddr("192.0.2.1") || !s.Started.Equal(time.Unix(1, 0)) {
		t.Errorf("sessionOf = %+v, %v", s, ok)
	}
}
