package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/internal/testenv"
)

// fleetDaemon is the fake daemon of a host in a fleet.
type fleetDaemon struct {
	*fakeDaemon
	reply bus.FleetReply
}

func (f *fleetDaemon) Fleet() (bus.FleetReply, error) { return f.reply, nil }

func (f *fleetDaemon) BanOrigins(jail string) ([]bus.BanOrigin, error) {
	if jail != "sshd" {
		return nil, nil
	}
	return []bus.BanOrigin{{Address: "192.0.2.7", Origin: "peer", Peer: "h1"}, {Address: "2001:db8::/64", Origin: "filter"}}, nil
}

// detailDaemon is a fleetDaemon that lists its bans with ListBansEx (origin, uid, peer, rule).
type detailDaemon struct{ *fleetDaemon }

func (f detailDaemon) BanDetails(jail string) ([]bus.BanDetail, error) {
	var out []bus.BanDetail
	for i, b := range f.bans[jail] {
		d := bus.BanDetail{Address: b.Address, BannedAtUsec: b.BannedAtUsec, ExpiresUsec: b.ExpiresUsec, BanCount: b.BanCount}
		if i == 0 {
			d.Origin, d.UID = "manual", 1000
		} else {
			d.Origin, d.Rule = "filter", "failed"
		}
		out = append(out, d)
	}
	return out, nil
}

func TestStatusFleet(t *testing.T) {
	reply := bus.FleetReply{
		Enabled: true, Host: "h2", Connected: true, Server: "nats://192.0.2.1:4222", Outbox: 0, Published: 3,
		Applied: 2, AppliedTotal: 5, Refused: 1,
		Peers: []bus.FleetPeer{{Host: "h1", Watching: true, Applied: 2, Refused: 1}, {Host: "h3", Watching: true}},
	}
	off := reply
	off.Connected, off.Outbox, off.Peers = false, 4, nil
	for _, tc := range []struct {
		name, args string
		reply      bus.FleetReply
	}{
		{"status-fleet", "status", reply},
		{"status-fleet-json", "status --json", reply},
		{"status-fleet-disconnected", "status", off},
		{"status-fleet-none", "status", bus.FleetReply{}},
		{"banned-origins", "banned", reply},
		{"banned-origins-json", "banned sshd --json", reply},
		{"banned-details", "banned", reply},
		{"banned-details-json", "banned sshd --json", reply},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d api = &fleetDaemon{fakeDaemon: newFakeDaemon(), reply: tc.reply}
			if strings.HasPrefix(tc.name, "banned-details") {
				d = detailDaemon{d.(*fleetDaemon)}
			}
			var stdout, stderr bytes.Buffer
			e := &env{
				stdout: &stdout, stderr: &stderr,
				dial:   func() (api, error) { return d, nil },
				events: func(string, int) ([]string, error) { return nil, nil },
				now:    func() time.Time { return now },
				loc:    time.UTC,
			}
			code := e.run(strings.Fields(tc.args))
			testenv.Golden(t, tc.name+".golden", transcript(tc.args, code, stdout.String(), stderr.String()))
		})
	}
}
