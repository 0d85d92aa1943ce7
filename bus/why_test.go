package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/internal/testenv"
)

// serveBackend serves b on a private system bus (with gaoler's policy) and returns a client of it and
// the bus's address.
func serveBackend(t *testing.T, b Backend) (*Client, string) {
	t.Helper()
	testenv.RequireRoot(t)
	addr := testenv.SystemBus(t)
	s := NewServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, func() (*dbus.Conn, error) { return dbus.Connect(addr) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	c, err := DialAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Version(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not take its name")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, addr
}

// whyFake is a fakeBackend that explains bans and takes the caller's uid with manual bans.
type whyFake struct {
	*fakeBackend
	reply WhyReply
}

func (f *whyFake) Why(address, jail string) (WhyReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Why %s %q", address, jail)
	if jail != "" && f.jails[jail] == nil {
		return WhyReply{}, fmt.Errorf("%w: %s", ErrNoSuchJail, jail)
	}
	return f.reply, nil
}

func (f *whyFake) BanBy(jail, address string, seconds uint64, uid uint32) (BanInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("BanBy %s %s %d uid=%d", jail, address, seconds, uid)
	return BanInfo{Address: address, BanCount: 1}, nil
}

func (f *whyFake) UnbanBy(jail, address string, uid uint32) (BanInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("UnbanBy %s %s uid=%d", jail, address, uid)
	return BanInfo{Address: address, BanCount: 1}, nil
}

func TestWhyAndManualOrigin(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	uid := uint32(0)
	fake := &whyFake{fakeBackend: newFakeBackend(), reply: WhyReply{
		Address: "192.0.2.7",
		Bans: []WhyBan{{
			Jail: "sshd", Prefix: "192.0.2.7", Active: true, BannedAt: at, Expires: at.Add(10 * time.Minute), Count: 1,
			Rule: "invalid-user", Origin: "filter",
			Entries: []WhyLine{{Time: at.Add(-time.Second), Cursor: "s=abc;i=1", Message: "Invalid user admin from 192.0.2.7 port 4242", PID: 99}},
		}, {
			Jail: "sshd", Prefix: "192.0.2.7", BannedAt: at.Add(-time.Hour), Expires: at.Add(-50 * time.Minute),
			Ended: at.Add(-55 * time.Minute), EndReason: "manual", Count: 1, Origin: "manual", UID: &uid,
		}},
		NotBanned: []WhyNot{{Jail: "nginx-auth", Ignored: "ignoreip 192.0.2.0/24"}},
	}}
	c, addr := serveBackend(t, fake)
	got, err := c.Why("192.0.2.7", "")
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(fake.reply)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("Why =\n%+v\nwant\n%+v", got, fake.reply)
	}
	if _, err := c.Why("192.0.2.7", "nope"); !errors.Is(err, ErrNoSuchJail) {
		t.Fatalf("Why in no jail: %v", err)
	}
	if _, err := c.Why("not-an-address", ""); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("Why of a name: %v", err)
	}
	if b, err := c.Ban("sshd", "192.0.2.9", 60); err != nil || b.Address != "192.0.2.9" {
		t.Fatal(b, err)
	}
	if _, err := c.Unban("sshd", "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	want := "Why 192.0.2.7 \"\"\nWhy 192.0.2.7 \"nope\"\nBanBy sshd 192.0.2.9 60 uid=0\nUnbanBy sshd 192.0.2.9 uid=0"
	if calls := strings.Join(fake.takeCalls(), "\n"); calls != want {
		t.Fatalf("backend calls:\n%s\nwant:\n%s", calls, want)
	}
	// The entries are root's to read, as the journal is: others are refused.
	f := &fixture{addr: addr}
	out, err := f.busctl(t, "nobody", "call", BusName, string(ManagerPath), ManagerInterface, "Why", "ss", "192.0.2.7", "")
	if err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("as nobody, Why: %v: %s; want access denied", err, out)
	}
	if calls := fake.takeCalls(); len(calls) != 0 {
		t.Fatalf("a refused call reached the backend: %v", calls)
	}
}
