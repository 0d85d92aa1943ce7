package logind_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/internal/testenv"
	"github.com/gaoler/gaoler/logind"
	"github.com/gaoler/gaoler/logind/logindtest"
)

// recorder collects what Watch reports.
type recorder struct {
	mu      sync.Mutex
	logins  []string
	notices []string
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 100)} }

func (r *recorder) login(s logind.Session) {
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
		logind.Watch(ctx, logind.Options{
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
	bus := testenv.StartBus(t, logindtest.Policy)
	f := logindtest.Start(t, bus.Address())
	f.Add(logindtest.Session{ID: "1", User: "admin", Service: "sshd", RemoteHost: "192.0.2.50", Remote: true})
	f.Add(logindtest.Session{ID: "2", User: "local", Service: "login"})
	f.Add(logindtest.Session{ID: "3", User: "named", Service: "sshd", RemoteHost: "office.example.org", Remote: true})
	r := newRecorder()
	watch(t, bus.Address(), r)
	r.wait(t, "the session open at start", func(l, _ []string) bool { return has(l, "1 admin sshd 192.0.2.50") })

	f.New(logindtest.Session{ID: "4", User: "admin6", Service: "sshd", RemoteHost: "2001:db8::5", Remote: true})
	f.New(logindtest.Session{ID: "5", User: "named", Service: "sshd", RemoteHost: "host.example.org", Remote: true})
	f.New(logindtest.Session{ID: "6", User: "mapped", Service: "sshd", RemoteHost: "::ffff:198.51.100.6", Remote: true})
	f.Remove("1")
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
	bus := testenv.StartBus(t, logindtest.Policy)
	r := newRecorder()
	watch(t, bus.Address(), r)
	r.wait(t, "a notice that logind is missing", func(_, n []string) bool { return has(n, "not on the system bus") })
	f := logindtest.Start(t, bus.Address())
	// ListSessions may run before the session is added; the signal covers that case.
	f.New(logindtest.Session{ID: "7", User: "admin", Service: "sshd", RemoteHost: "203.0.113.7", Remote: true})
	r.wait(t, "the session once logind appeared", func(l, _ []string) bool { return has(l, "7 admin sshd 203.0.113.7") })
}

func TestWatchSurvivesTheBusRestarting(t *testing.T) {
	testenv.RequireRoot(t)
	bus := testenv.StartBus(t, logindtest.Policy)
	f := logindtest.Start(t, bus.Address())
	f.Add(logindtest.Session{ID: "1", User: "admin", Service: "sshd", RemoteHost: "192.0.2.51", Remote: true})
	r := newRecorder()
	watch(t, bus.Address(), r)
	r.wait(t, "the first session", func(l, _ []string) bool { return has(l, "192.0.2.51") })
	bus.Stop()
	r.wait(t, "a notice of the bus lost", func(_, n []string) bool { return has(n, "not followed until the system bus is back") })
	bus.Start()
	f2 := logindtest.Start(t, bus.Address())
	f2.Add(logindtest.Session{ID: "2", User: "admin", Service: "sshd", RemoteHost: "192.0.2.52", Remote: true})
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
		a, ok := logind.ParseRemoteHost(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("ParseRemoteHost(%q) = %q, want %q", in, got, want)
		}
	}
}
