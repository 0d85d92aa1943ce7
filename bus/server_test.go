package bus

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// fixture is a private system bus with a Server for a fakeBackend on it.
type fixture struct {
	bus     *testenv.Bus
	addr    string
	fake    *fakeBackend
	server  *Server
	client  *Client
	mu      sync.Mutex
	warning []string
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	f := &fixture{bus: testenv.StartBus(t), fake: newFakeBackend()}
	f.addr = f.bus.Address()
	opts = append([]Option{WithWarn(func(m string) {
		f.mu.Lock()
		f.warning = append(f.warning, m)
		f.mu.Unlock()
	})}, opts...)
	f.server = NewServer(f.fake, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.server.Serve(ctx, func() (*dbus.Conn, error) { return dbus.Connect(f.addr) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	c, err := DialAddress(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.client = c
	f.waitOwner(t)
	return f
}

// waitOwner waits until the server owns BusName on the bus.
func (f *fixture) waitOwner(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := f.client.Version(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the server did not take %s within 10s", BusName)
}

// busctl runs busctl against the private bus, as root or, with asUser, as that user.
func (f *fixture) busctl(t *testing.T, asUser string, args ...string) (string, error) {
	t.Helper()
	testenv.RequireCommand(t, "busctl")
	all := append([]string{"--address=" + f.addr, "--no-pager"}, args...)
	var cmd *exec.Cmd
	if asUser != "" {
		testenv.RequireCommand(t, "runuser")
		cmd = exec.Command("runuser", append([]string{"-u", asUser, "--", "busctl"}, all...)...)
	} else {
		cmd = exec.Command("busctl", all...)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// indentXML re-indents an introspection document so that the golden file reads well.
func indentXML(t *testing.T, doc string) string {
	t.Helper()
	var b strings.Builder
	dec := xml.NewDecoder(strings.NewReader(doc))
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("introspection is not XML: %v\n%s", err, doc)
		}
		if cd, ok := tok.(xml.CharData); ok && strings.TrimSpace(string(cd)) == "" {
			continue
		}
		if err := enc.EncodeToken(xml.CopyToken(tok)); err != nil {
			t.Fatal(err)
		}
	}
	enc.Flush()
	return b.String() + "\n"
}

func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	conn, err := dbus.Connect(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	objects := []struct {
		path   dbus.ObjectPath
		golden string
	}{
		{ManagerPath, "manager.xml"},
		{JailPathPrefix, "jail-parent.xml"},
		{JailPath("sshd"), "jail-sshd.xml"},
		{JailPath("nginx-auth"), "jail-nginx-auth.xml"},
	}
	for _, o := range objects {
		t.Run(o.golden, func(t *testing.T) {
			var doc string
			err := conn.Object(BusName, o.path).Call(introspectableIntf+".Introspect", 0).Store(&doc)
			if err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, o.golden, indentXML(t, doc))
			// busctl parses the document and lists the members of every interface.
			out, err := f.busctl(t, "", "introspect", BusName, string(o.path))
			if err != nil {
				t.Fatalf("busctl introspect %s: %v\n%s", o.path, err, out)
			}
			for _, iface := range []string{introspectableIntf, "org.freedesktop.DBus.Peer"} {
				if !strings.Contains(out, iface) {
					t.Errorf("busctl introspect %s lacks %s:\n%s", o.path, iface, out)
				}
			}
		})
	}
	// busctl tree walks from / through the intermediate nodes to every jail.
	out, err := f.busctl(t, "", "tree", "--list", BusName)
	if err != nil {
		t.Fatalf("busctl tree: %v\n%s", err, out)
	}
	for _, p := range []dbus.ObjectPath{ManagerPath, JailPath("sshd"), JailPath("nginx-auth")} {
		if !strings.Contains(out, string(p)) {
			t.Errorf("busctl tree lacks %s:\n%s", p, out)
		}
	}
	// Peer works on every object.
	for _, o := range objects {
		if err := conn.Object(BusName, o.path).Call("org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
			t.Errorf("Ping %s: %v", o.path, err)
		}
	}
}

func TestClientMethods(t *testing.T) {
	f := newFixture(t)
	c := f.client
	if v, err := c.Version(); err != nil || v != "0.1.0-test" {
		t.Errorf("Version() = %q, %v", v, err)
	}
	if r, err := c.Reader(); err != nil || r != "idle" {
		t.Errorf("Reader() = %q, %v", r, err)
	}
	jails, err := c.Jails()
	if err != nil || strings.Join(jails, ",") != "nginx-auth,sshd" {
		t.Errorf("Jails() = %v, %v", jails, err)
	}
	j, err := c.Jail("sshd")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.fake.Jail("sshd")
	if strings.Join(j.JournalMatch, " ") != strings.Join(want.JournalMatch, " ") || j.Name != want.Name ||
		j.Filter != want.Filter || j.FindTime != want.FindTime || j.BanTime != want.BanTime ||
		j.MaxRetry != want.MaxRetry || j.CurrentlyFailed != want.CurrentlyFailed || j.TotalFailed != want.TotalFailed ||
		j.CurrentlyBanned != want.CurrentlyBanned || j.TotalBanned != want.TotalBanned {
		t.Errorf("Jail(sshd) = %+v, want %+v", j, want)
	}
	if b, err := c.Ban("nginx-auth", "2001:db8::/64", 90); err != nil || b != (BanInfo{"2001:db8::/64", 1, 1 + 90e6, 1}) {
		t.Errorf("Ban = %+v, %v", b, err)
	}
	bans, err := c.ListBans("nginx-auth")
	if err != nil || len(bans) != 1 || bans[0].Address != "2001:db8::/64" || bans[0].ExpiresUsec != 1+90e6 {
		t.Errorf("ListBans(nginx-auth) = %+v, %v", bans, err)
	}
	if b, err := c.Unban("nginx-auth", "2001:db8::/64"); err != nil || b != (BanInfo{"2001:db8::/64", 1, 1 + 90e6, 1}) {
		t.Errorf("Unban = %+v, %v", b, err)
	}
	if n, err := c.UnbanAll("sshd"); err != nil || n != 1 {
		t.Errorf("UnbanAll(sshd) = %d, %v; want 1", n, err)
	}
	if bans, err := c.ListBans("sshd"); err != nil || len(bans) != 0 {
		t.Errorf("ListBans(sshd) after UnbanAll = %+v, %v", bans, err)
	}
	if err := c.Reload(); err != nil {
		t.Errorf("Reload: %v", err)
	}
	got := strings.Join(f.fake.takeCalls(), "\n")
	wantCalls := "Ban nginx-auth 2001:db8::/64 90\nUnban nginx-auth 2001:db8::/64\nUnbanAll sshd\nReload"
	if got != wantCalls {
		t.Errorf("backend calls:\n%s\nwant:\n%s", got, wantCalls)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	c := f.client
	tests := []struct {
		name     string
		call     func() error
		sentinel error
	}{
		{"ban bad address", func() error { _, err := c.Ban("sshd", "not-an-ip", 0); return err }, ErrInvalidAddress},
		{"unban bad address", func() error { _, err := c.Unban("sshd", "300.1.1.1"); return err }, ErrInvalidAddress},
		{"ban unknown jail", func() error { _, err := c.Ban("nosuch", "192.0.2.1", 0); return err }, ErrNoSuchJail},
		{"unban unknown jail", func() error { _, err := c.Unban("nosuch", "192.0.2.1"); return err }, ErrNoSuchJail},
		{"unban all unknown jail", func() error { _, err := c.UnbanAll("nosuch"); return err }, ErrNoSuchJail},
		{"list unknown jail", func() error { _, err := c.ListBans("nosuch"); return err }, ErrNoSuchJail},
		{"properties of unknown jail", func() error { _, err := c.Jail("nosuch"); return err }, ErrNoSuchJail},
		{"unban not banned", func() error { _, err := c.Unban("sshd", "198.51.100.1"); return err }, ErrNotBanned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v (%T), want %v", err, err, tt.sentinel)
			}
		})
	}
	// The error names on the wire, as any D-Bus client sees them.
	wire := []struct {
		path       dbus.ObjectPath
		method     string
		args       []any
		wantPrefix string
	}{
		{JailPath("sshd"), "Ban", []any{"bogus", uint64(0)}, "io.github.gaoler.Gaoler1.Error.InvalidAddress"},
		{JailPath("nosuch"), "Ban", []any{"192.0.2.1", uint64(0)}, "io.github.gaoler.Gaoler1.Error.NoSuchJail"},
		{JailPath("sshd"), "Unban", []any{"192.0.2.99"}, "io.github.gaoler.Gaoler1.Error.NotBanned"},
		{JailPath("sshd"), "BanEx", []any{"bogus", uint64(0)}, "io.github.gaoler.Gaoler1.Error.InvalidAddress"},
		{JailPath("nosuch"), "BanEx", []any{"192.0.2.1", uint64(0)}, "io.github.gaoler.Gaoler1.Error.NoSuchJail"},
	}
	for _, w := range wire {
		err := f.client.conn.Object(BusName, w.path).Call(JailInterface+"."+w.method, 0, w.args...).Err
		var de dbus.Error
		if !errors.As(err, &de) || de.Name != w.wantPrefix {
			t.Errorf("%s %s%v: error %v, want %s", w.path, w.method, w.args, err, w.wantPrefix)
		}
	}
	// busctl shows the daemon's message.
	out, err := f.busctl(t, "", "call", BusName, string(JailPath("nosuch")), JailInterface, "Unban", "s", "192.0.2.1")
	if err == nil || !strings.Contains(out, "no such jail") {
		t.Errorf("busctl Unban on an unknown jail: %v: %s", err, out)
	}
}

func TestNotRunning(t *testing.T) {
	testenv.RequireRoot(t)
	addr := testenv.SystemBus(t)
	c, err := DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Jails(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Jails() without a daemon: %v, want ErrNotRunning", err)
	}
	if _, err := c.Ban("sshd", "192.0.2.1", 0); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Ban() without a daemon: %v, want ErrNotRunning", err)
	}
}

func TestBusctlMethods(t *testing.T) {
	f := newFixture(t)
	sshd, nginx := string(JailPath("sshd")), string(JailPath("nginx-auth"))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get-property", BusName, string(ManagerPath), ManagerInterface, "Version"}, `s "0.1.0-test"`},
		{[]string{"get-property", BusName, string(ManagerPath), ManagerInterface, "Jails"},
			`ao 2 "/io/github/gaoler/Gaoler1/jail/nginx_2dauth" "/io/github/gaoler/Gaoler1/jail/sshd"`},
		{[]string{"get-property", BusName, string(ManagerPath), ManagerInterface, "Reader"}, `s "idle"`},
		{[]string{"get-property", BusName, sshd, JailInterface, "MaxRetry"}, "u 5"},
		{[]string{"get-property", BusName, sshd, JailInterface, "TotalFailed"}, "t 17"},
		{[]string{"get-property", BusName, sshd, JailInterface, "JournalMatch"},
			`as 5 "_UID=0" "_COMM=sshd" "+" "_UID=0" "_SYSTEMD_UNIT=ssh.service"`},
		{[]string{"call", BusName, sshd, JailInterface, "ListBans"},
			`a(sttu) 1 "192.0.2.7" 1764064800000000 1764065400000000 1`},
		{[]string{"call", BusName, nginx, JailInterface, "Ban", "st", "192.0.2.8", "60"}, ""},
		{[]string{"call", BusName, nginx, JailInterface, "Unban", "s", "192.0.2.8"}, ""},
		{[]string{"call", BusName, sshd, JailInterface, "UnbanAll"}, "u 1"},
		{[]string{"call", BusName, string(ManagerPath), ManagerInterface, "Reload"}, ""},
		{[]string{"call", BusName, sshd, "org.freedesktop.DBus.Peer", "Ping"}, ""},
	}
	for _, tt := range tests {
		out, err := f.busctl(t, "", tt.args...)
		if err != nil || out != tt.want {
			t.Errorf("busctl %s: %v\n got %q\nwant %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}
	got := strings.Join(f.fake.takeCalls(), "\n")
	if want := "Ban nginx-auth 192.0.2.8 60\nUnban nginx-auth 192.0.2.8\nUnbanAll sshd\nReload"; got != want {
		t.Errorf("backend calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestUnprivileged(t *testing.T) {
	f := newFixture(t)
	sshd := string(JailPath("sshd"))
	allowed := [][]string{
		{"introspect", BusName, string(ManagerPath)},
		{"introspect", BusName, sshd},
		{"get-property", BusName, string(ManagerPath), ManagerInterface, "Jails"},
		{"get-property", BusName, sshd, JailInterface, "CurrentlyBanned"},
		{"call", BusName, sshd, "org.freedesktop.DBus.Properties", "GetAll", "s", JailInterface},
		{"call", BusName, sshd, JailInterface, "ListBans"},
		{"call", BusName, sshd, "org.freedesktop.DBus.Peer", "Ping"},
	}
	for _, args := range allowed {
		if out, err := f.busctl(t, "nobody", args...); err != nil {
			t.Errorf("as nobody, busctl %s refused: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	refused := [][]string{
		{"call", BusName, sshd, JailInterface, "Unban", "s", "192.0.2.7"},
		{"call", BusName, sshd, JailInterface, "Ban", "st", "192.0.2.9", "0"},
		{"call", BusName, sshd, JailInterface, "UnbanAll"},
		{"call", BusName, string(ManagerPath), ManagerInterface, "Reload"},
		{"call", BusName, sshd, "org.freedesktop.DBus.Properties", "Set", "ssv", JailInterface, "MaxRetry", "u", "1"},
	}
	for _, args := range refused {
		out, err := f.busctl(t, "nobody", args...)
		if err == nil || !strings.Contains(out, "denied") {
			t.Errorf("as nobody, busctl %s: %v: %s; want access denied", strings.Join(args, " "), err, out)
		}
	}
	if calls := f.fake.takeCalls(); len(calls) != 0 {
		t.Errorf("refused calls reached the backend: %v", calls)
	}
	// Owning the name is root's alone.
	out, err := exec.Command("runuser", "-u", "nobody", "--", "dbus-send", "--bus="+f.addr, "--print-reply",
		"--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName",
		"string:"+BusName, "uint32:4").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AccessDenied") {
		t.Errorf("as nobody, RequestName %s: %v: %s; want AccessDenied", BusName, err, out)
	}
}

// signals subscribes to the signals of BusName's objects on a connection of its own; match narrows
// the match rule.
func signals(t *testing.T, addr string, match ...dbus.MatchOption) chan *dbus.Signal {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.AddMatchSignal(append([]dbus.MatchOption{dbus.WithMatchSender(BusName)}, match...)...); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 1024)
	conn.Signal(ch)
	return ch
}

func nextSignal(t *testing.T, ch chan *dbus.Signal, name string) *dbus.Signal {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-ch:
			if s.Name == name {
				return s
			}
		case <-timeout:
			t.Fatalf("no %s signal within 5s", name)
			return nil
		}
	}
}

// TestSignals: the SPEC's Banned and Unbanned (their Ex siblings are in signals_test.go), and
// PropertiesChanged after JailsChanged.
func TestSignals(t *testing.T) {
	f := newFixture(t)
	ch := signals(t, f.addr)
	at := time.UnixMicro(1_764_064_800_000_000)
	f.server.Announce(events.Event{Kind: events.Ban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"),
		BannedAt: at, Expires: at.Add(10 * time.Minute), Count: 2})
	s := nextSignal(t, ch, bannedSignalName)
	if s.Path != ManagerPath || len(s.Body) != 4 || s.Body[0] != "sshd" || s.Body[1] != "192.0.2.7" ||
		s.Body[2] != uint64(1_764_065_400_000_000) || s.Body[3] != uint32(2) {
		t.Errorf("Banned signal %s %v", s.Path, s.Body)
	}
	f.server.Announce(events.Event{Kind: events.Unban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"),
		Reason: "manual", Origin: events.Origin{Kind: events.OriginManual}})
	s = nextSignal(t, ch, unbannedSignalName)
	if len(s.Body) != 3 || s.Body[0] != "sshd" || s.Body[1] != "192.0.2.7" || s.Body[2] != "manual" {
		t.Errorf("Unbanned signal %v", s.Body)
	}
	// A non-root subscriber receives them too.
	out, err := f.busctl(t, "nobody", "introspect", BusName, string(ManagerPath))
	if err != nil || !strings.Contains(out, ".Banned") {
		t.Errorf("nobody introspect: %v: %s", err, out)
	}
	f.server.JailsChanged()
	s = nextSignal(t, ch, propertiesChangedName)
	if s.Path != ManagerPath || s.Body[0] != ManagerInterface {
		t.Errorf("PropertiesChanged after JailsChanged: %s %v", s.Path, s.Body)
	}
}

func TestPropertiesChangedCoalesced(t *testing.T) {
	const interval = 200 * time.Millisecond
	f := newFixture(t, WithCoalesce(interval))
	ch := signals(t, f.addr)
	start := time.Now()
	const updates = 2000
	for i := 1; i <= updates; i++ {
		f.fake.setFailed("sshd", uint32(i))
		f.server.CountersChanged("sshd")
		if i%100 == 0 {
			time.Sleep(25 * time.Millisecond) // spread the flood over ~0.5s
		}
	}
	elapsed := time.Since(start)
	// Collect until the final value arrives.
	var got []*dbus.Signal
	timeout := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case s := <-ch:
			if s.Name != propertiesChangedName || s.Path != JailPath("sshd") {
				continue
			}
			got = append(got, s)
			changed := s.Body[1].(map[string]dbus.Variant)
			if v, ok := changed["CurrentlyFailed"]; ok && v.Value() == uint32(updates) {
				done = true
			}
		case <-timeout:
			t.Fatalf("the final CurrentlyFailed=%d was not announced; got %d signals", updates, len(got))
		}
	}
	limit := int(elapsed/interval) + 2
	if len(got) > limit {
		t.Errorf("%d PropertiesChanged for %d changes in %v, want at most %d", len(got), updates, elapsed, limit)
	}
	t.Logf("%d changes in %v -> %d PropertiesChanged signals", updates, elapsed, len(got))
	// Only what changed is announced after the first signal.
	last := got[len(got)-1].Body[1].(map[string]dbus.Variant)
	if len(got) > 1 {
		if _, ok := last["MaxRetry"]; ok {
			t.Errorf("unchanged MaxRetry announced again: %v", last)
		}
	}
}

func TestBusRestart(t *testing.T) {
	f := newFixture(t)
	f.client.Close()
	f.bus.Stop()
	time.Sleep(300 * time.Millisecond) // the server notices and starts retrying
	f.bus.Start()
	start := time.Now()
	c, err := DialAddress(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	t.Cleanup(func() { c.Close() })
	f.waitOwner(t)
	t.Logf("name taken again %v after the bus came back", time.Since(start))
	if jails, err := c.Jails(); err != nil || len(jails) != 2 {
		t.Errorf("Jails() after restart = %v, %v", jails, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.warning) == 0 || !strings.Contains(strings.Join(f.warning, "\n"), "lost") {
		t.Errorf("no warning about the lost bus: %q", f.warning)
	}
}

func TestBusLater(t *testing.T) {
	testenv.RequireRoot(t)
	b := testenv.StartBus(t)
	b.Stop()
	fake := newFakeBackend()
	var mu sync.Mutex
	var warnings []string
	s := NewServer(fake, WithWarn(func(m string) { mu.Lock(); warnings = append(warnings, m); mu.Unlock() }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, func() (*dbus.Conn, error) { return dbus.Connect(b.Address()) })
	}()
	defer func() { cancel(); <-done }()
	// Without a bus the server only retries; signals go nowhere and do not block.
	s.Announce(events.Event{Kind: events.Ban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"), Count: 1})
	s.CountersChanged("sshd")
	time.Sleep(300 * time.Millisecond)
	b.Start()
	c, err := DialAddress(b.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Version(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not take the name after the bus appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) != 2 || !strings.Contains(warnings[0], "unavailable") || !strings.Contains(warnings[1], "available again") {
		t.Errorf("warnings %q, want one about the missing bus and one when it is back", warnings)
	}
}

func TestJailsChanged(t *testing.T) {
	f := newFixture(t, WithCoalesce(50*time.Millisecond))
	ch := signals(t, f.addr)
	f.fake.mu.Lock()
	f.fake.jails["recidive"] = &JailInfo{Name: "recidive", Filter: "recidive", MaxRetry: 3}
	delete(f.fake.jails, "nginx-auth")
	f.fake.jails["sshd"].MaxRetry = 7
	f.fake.mu.Unlock()
	f.server.JailsChanged()
	s := nextSignal(t, ch, propertiesChangedName)
	jails := s.Body[1].(map[string]dbus.Variant)["Jails"].Value()
	if s.Path != ManagerPath || fmt.Sprint(jails) != "[/io/github/gaoler/Gaoler1/jail/recidive /io/github/gaoler/Gaoler1/jail/sshd]" {
		t.Errorf("first signal after JailsChanged: %s %v", s.Path, s.Body)
	}
	seen := map[dbus.ObjectPath]map[string]dbus.Variant{}
	for len(seen) < 2 {
		s := nextSignal(t, ch, propertiesChangedName)
		seen[s.Path] = s.Body[1].(map[string]dbus.Variant)
	}
	if v := seen[JailPath("sshd")]["MaxRetry"]; v.Value() != uint32(7) {
		t.Errorf("sshd's new MaxRetry not announced: %v", seen[JailPath("sshd")])
	}
	if _, ok := seen[JailPath("recidive")]; !ok {
		t.Errorf("the new jail's properties not announced: %v", seen)
	}
	out, err := f.busctl(t, "", "introspect", BusName, string(JailPath("nginx-auth")))
	if err == nil || !strings.Contains(out, "no such jail") {
		t.Errorf("the removed jail still introspects: %s", out)
	}
}

// TestActivationFile checks packaging/dbus/io.github.gaoler.Gaoler1.service on a bus that reads it:
// the name is activatable, and the client, which never auto-starts, still says the daemon is not
// running.
func TestActivationFile(t *testing.T) {
	testenv.RequireRoot(t)
	dir, err := filepath.Abs("../packaging/dbus")
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.StartBus(t, "<servicedir>"+dir+"</servicedir>")
	conn, err := dbus.Connect(b.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var names []string
	if err := conn.BusObject().Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(names, " "), BusName) {
		t.Errorf("%s is not activatable from %s: %v", BusName, dir, names)
	}
	c := NewClient(conn)
	if _, err := c.Jails(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Jails() with an activatable name and no daemon: %v, want ErrNotRunning", err)
	}
}

// TestBanReplies: Ban replies with nothing (the SPEC's Ban(s, t), unchanged for busctl and scripts);
// BanEx replies with the canonical prefix now banned; a refused ban is InvalidAddress with the
// daemon's message as it is, on both.
func TestBanReplies(t *testing.T) {
	f := newFixture(t)
	obj := f.client.conn.Object(BusName, JailPath("sshd"))

	call := obj.Call(JailInterface+".Ban", 0, "::ffff:192.0.2.10", uint64(60))
	if call.Err != nil || len(call.Body) != 0 {
		t.Errorf("Ban replied %v, %v; want nothing", call.Body, call.Err)
	}
	var prefix string
	var bannedAt, expires uint64
	var count uint32
	if err := obj.Call(JailInterface+".BanEx", 0, "::ffff:192.0.2.11", uint64(60)).Store(&prefix, &bannedAt, &expires, &count); err != nil {
		t.Fatalf("BanEx: %v", err)
	}
	if prefix != "192.0.2.11" || bannedAt != 1 || expires != 1+60e6 || count != 1 {
		t.Errorf("BanEx replied %q %d %d %d; want 192.0.2.11 1 60000001 1", prefix, bannedAt, expires, count)
	}
	if b, err := f.client.Ban("sshd", "::ffff:192.0.2.12", 60); err != nil || b.Address != "192.0.2.12" {
		t.Errorf("Client.Ban = %+v, %v; want 192.0.2.12", b, err)
	}

	const msg = "0.0.0.0/0 contains 127.0.0.0/8, which jail sshd ignores"
	for _, method := range []string{"Ban", "BanEx"} {
		err := obj.Call(JailInterface+"."+method, 0, "0.0.0.0/0", uint64(0)).Err
		var de dbus.Error
		if !errors.As(err, &de) || de.Name != "io.github.gaoler.Gaoler1.Error.InvalidAddress" || len(de.Body) != 1 || de.Body[0] != msg {
			t.Errorf("%s 0.0.0.0/0: %#v, want InvalidAddress %q", method, err, msg)
		}
	}
	_, err := f.client.Ban("sshd", "0.0.0.0/0", 0)
	var re *RemoteError
	if !errors.As(err, &re) || !errors.Is(err, ErrInvalidAddress) || err.Error() != msg {
		t.Errorf("Client.Ban(0.0.0.0/0) = %v, want ErrInvalidAddress %q", err, msg)
	}
	out, err := f.busctl(t, "", "call", BusName, string(JailPath("sshd")), JailInterface, "Ban", "st", "0.0.0.0/0", "0")
	if err == nil || !strings.Contains(out, msg) {
		t.Errorf("busctl Ban 0.0.0.0/0: %v: %s", err, out)
	}
	if got := strings.Join(f.fake.takeCalls(), "\n"); got != "Ban sshd ::ffff:192.0.2.10 60\nBan sshd ::ffff:192.0.2.11 60\nBan sshd ::ffff:192.0.2.12 60" {
		t.Errorf("backend calls:\n%s", got)
	}
}

// TestUnbanReplies: Unban replies with nothing (the SPEC's Unban(s)); UnbanEx replies with the ban
// lifted, whose prefix is the canonical one (::ffff:192.0.2.7 and 192.0.2.7/32 lift 192.0.2.7), and
// Client.Unban returns it.
func TestUnbanReplies(t *testing.T) {
	f := newFixture(t)
	obj := f.client.conn.Object(BusName, JailPath("sshd"))
	for _, a := range []string{"192.0.2.20", "192.0.2.21", "192.0.2.22"} {
		if _, err := f.client.Ban("sshd", a, 60); err != nil {
			t.Fatal(err)
		}
	}
	call := obj.Call(JailInterface+".Unban", 0, "::ffff:192.0.2.20")
	if call.Err != nil || len(call.Body) != 0 {
		t.Errorf("Unban replied %v, %v; want nothing", call.Body, call.Err)
	}
	var prefix string
	var bannedAt, expires uint64
	var count uint32
	if err := obj.Call(JailInterface+".UnbanEx", 0, "192.0.2.21/32").Store(&prefix, &bannedAt, &expires, &count); err != nil {
		t.Fatalf("UnbanEx: %v", err)
	}
	if prefix != "192.0.2.21" || bannedAt != 1 || expires != 1+60e6 || count != 1 {
		t.Errorf("UnbanEx replied %q %d %d %d; want 192.0.2.21 1 60000001 1", prefix, bannedAt, expires, count)
	}
	out, err := f.busctl(t, "", "call", BusName, string(JailPath("sshd")), JailInterface, "UnbanEx", "s", "::ffff:192.0.2.22")
	if err != nil || out != `sttu "192.0.2.22" 1 60000001 1` {
		t.Errorf("busctl UnbanEx: %v: %s", err, out)
	}
	if b, err := f.client.Unban("sshd", "::ffff:192.0.2.7"); err != nil || b.Address != "192.0.2.7" {
		t.Errorf("Client.Unban = %+v, %v; want 192.0.2.7", b, err)
	}
	err = obj.Call(JailInterface+".UnbanEx", 0, "198.51.100.1").Err
	var de dbus.Error
	if !errors.As(err, &de) || de.Name != "io.github.gaoler.Gaoler1.Error.NotBanned" {
		t.Errorf("UnbanEx of what is not banned: %#v, want NotBanned", err)
	}
	// UnbanEx changes bans: root only, as Unban.
	out, err = f.busctl(t, "nobody", "call", BusName, string(JailPath("sshd")), JailInterface, "UnbanEx", "s", "192.0.2.7")
	if err == nil || !strings.Contains(out, "denied") {
		t.Errorf("nobody may UnbanEx: %v: %s", err, out)
	}
}
