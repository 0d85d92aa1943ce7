package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/bus"
)

// banSignals receives the Manager's signals of the gaolerd on the bus at addr, on a connection of
// its own, until the test ends.
type banSignals struct {
	name string // the host, for messages
	ch   chan *dbus.Signal
	seen []*dbus.Signal // received and not taken yet
}

func watchSignals(t testing.TB, name, addr string) *banSignals {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.AddMatchSignal(dbus.WithMatchSender(bus.BusName), dbus.WithMatchInterface(bus.ManagerInterface)); err != nil {
		t.Fatal(err)
	}
	s := &banSignals{name: name, ch: make(chan *dbus.Signal, 4096)}
	conn.Signal(s.ch)
	return s
}

// wait returns the body of the first signal member (such as "BannedEx") whose argument 1, the
// address or prefix, is prefix, received within d; the others stay for later calls.
func (s *banSignals) wait(t testing.TB, d time.Duration, member, prefix string) []any {
	t.Helper()
	name := bus.ManagerInterface + "." + member
	match := func(sig *dbus.Signal) bool {
		return sig.Name == name && len(sig.Body) > 1 && sig.Body[1] == prefix
	}
	for i, sig := range s.seen {
		if match(sig) {
			s.seen = append(s.seen[:i], s.seen[i+1:]...)
			return sig.Body
		}
	}
	timeout := time.After(d)
	for {
		select {
		case sig := <-s.ch:
			if match(sig) {
				return sig.Body
			}
			s.seen = append(s.seen, sig)
		case <-timeout:
			var got []string
			for _, sig := range s.seen {
				got = append(got, fmt.Sprintf("%s %v", sig.Name, sig.Body))
			}
			t.Fatalf("%s sent no %s for %s within %s; it sent %v", s.name, member, prefix, d, got)
			return nil
		}
	}
}

// origin returns a BannedEx's origin, uid, peer and rule, or an UnbannedEx's reason, origin, uid,
// peer, by, by_uid and by_peer, as one line.
func origin(body []any) string {
	switch len(body) {
	case 9:
		return fmt.Sprintf("origin=%v uid=%v peer=%v rule=%v", body[5], body[6], body[7], body[8])
	case 11:
		return fmt.Sprintf("reason=%v origin=%v uid=%v peer=%v by=%v by_uid=%v by_peer=%v",
			body[2], body[4], body[5], body[6], body[8], body[9], body[10])
	}
	return fmt.Sprintf("%v", body)
}
