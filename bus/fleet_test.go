package bus

import (
	"reflect"
	"testing"
)

// fleetFake is a fakeBackend in a fleet.
type fleetFake struct {
	*fakeBackend
	reply FleetReply
}

func (f *fleetFake) FleetStatus() (FleetReply, error) { return f.reply, nil }

func TestFleet(t *testing.T) {
	want := FleetReply{
		Enabled: true, Host: "h2", Connected: true, Server: "nats://192.0.2.1:4222", Outbox: 1, Published: 3,
		Applied: 2, AppliedTotal: 5, Refused: 1,
		Peers: []FleetPeer{{Host: "h1", Watching: true, Applied: 2, Refused: 1}, {Host: "h3", Watching: true}},
	}
	c, _ := serveBackend(t, &fleetFake{fakeBackend: newFakeBackend(), reply: want})
	got, err := c.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Fleet() = %+v\nwant       %+v", got, want)
	}
}

func TestFleetWithoutOne(t *testing.T) {
	c, _ := serveBackend(t, newFakeBackend())
	got, err := c.Fleet()
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled || len(got.Peers) != 0 {
		t.Fatalf("Fleet() = %+v, want not enabled", got)
	}
}

func (f *fleetFake) BanOrigins(jail string) ([]BanOrigin, error) {
	if jail != "sshd" {
		return nil, ErrNoSuchJail
	}
	return []BanOrigin{{Address: "192.0.2.7", Origin: "peer", Peer: "h1"}}, nil
}

func TestBanOrigins(t *testing.T) {
	c, _ := serveBackend(t, &fleetFake{fakeBackend: newFakeBackend()})
	got, err := c.BanOrigins("sshd")
	if err != nil {
		t.Fatal(err)
	}
	if want := []BanOrigin{{Address: "192.0.2.7", Origin: "peer", Peer: "h1"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("BanOrigins = %+v, want %+v", got, want)
	}
}
