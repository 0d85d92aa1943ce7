package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/internal/testenv"
)

// watchDaemon is a fake daemon that sends sigs to a watcher, then closes the connection.
type watchDaemon struct {
	*fakeDaemon
	sigs []bus.BanSignal
}

func (w watchDaemon) WatchBans(ctx context.Context, handle func(bus.BanSignal)) error {
	for _, s := range w.sigs {
		handle(s)
	}
	return nil
}

var sampleSignals = []bus.BanSignal{
	{Jail: "sshd", Prefix: "192.0.2.7", BannedAtUsec: usec(now), ExpiresUsec: usec(now.Add(time.Hour)), BanCount: 2,
		Origin: "filter", Rule: "failed"},
	{Jail: "sshd", Prefix: "2001:db8::/64", BannedAtUsec: usec(now), ExpiresUsec: usec(now.Add(24 * time.Hour)), BanCount: 1,
		Origin: "peer", Peer: "h1"},
	{Jail: "nginx-auth", Prefix: "198.51.100.4", BannedAtUsec: usec(now), ExpiresUsec: usec(now.Add(time.Hour)), BanCount: 1,
		Origin: "manual", UID: 1000},
	{Unban: true, Jail: "sshd", Prefix: "192.0.2.7", BanCount: 2, Reason: "manual", Origin: "filter", Rule: "failed",
		By: "manual", ByUID: 0},
	{Unban: true, Jail: "sshd", Prefix: "2001:db8::/64", BanCount: 1, Reason: "peer", Origin: "peer", Peer: "h1",
		By: "peer", ByPeer: "h1"},
	{Unban: true, Jail: "nginx-auth", Prefix: "198.51.100.4", BanCount: 1, Reason: "expired", Origin: "manual", UID: 1000,
		By: bus.ByDaemon},
}

func TestWatch(t *testing.T) {
	notRunning := &bus.RemoteError{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Message: "The name is not activatable"}
	for _, tc := range []struct {
		name, args string
		err        error
	}{
		{"watch", "watch", nil},
		{"watch-jail", "watch sshd", nil},
		{"watch-json", "watch --json", nil},
		{"watch-no-such-jail", "watch nosuch", nil},
		{"watch-not-running", "watch", notRunning},
		{"watch-extra", "watch sshd nginx-auth", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeDaemon()
			fake.err = tc.err
			var stdout, stderr bytes.Buffer
			e := &env{
				stdout: &stdout, stderr: &stderr,
				dial:   func() (api, error) { return watchDaemon{fake, sampleSignals}, nil },
				events: func(string, int) ([]string, error) { return nil, nil },
				now:    func() time.Time { return now },
				loc:    time.UTC,
			}
			code := e.run(strings.Fields(tc.args))
			testenv.Golden(t, tc.name+".golden", transcript(tc.args, code, stdout.String(), stderr.String()))
		})
	}
}
