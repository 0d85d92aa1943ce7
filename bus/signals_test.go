package bus

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/gaoler/gaoler/events"
)

// TestSignalsEx: each ban and unban sends the SPEC's signal and then its Ex sibling with the origin
// (filter with its rule, manual with the uid, peer with the peer's name); a restored ban sends
// neither; a match rule on the origin's position selects the peers' bans alone.
func TestSignalsEx(t *testing.T) {
	f := newFixture(t)
	ch := signals(t, f.addr)
	peers := signals(t, f.addr, dbus.WithMatchInterface(ManagerInterface), dbus.WithMatchMember("BannedEx"),
		dbus.WithMatchArg(5, "peer"))

	at := time.UnixMicro(1_764_064_800_000_000)
	until := at.Add(time.Hour)
	ban := func(prefix string, o events.Origin, rule string) events.Event {
		return events.Event{Kind: events.Ban, Jail: "sshd", Prefix: netip.MustParsePrefix(prefix),
			BannedAt: at, Expires: until, Count: 3, Origin: o, BanOrigin: o, Rule: rule}
	}
	filter := events.Origin{Kind: events.OriginFilter}
	manual := events.Origin{Kind: events.OriginManual, UID: 1000}
	peer := events.Origin{Kind: events.OriginPeer, Peer: "h1"}

	restored := ban("198.51.100.9/32", filter, "invalid user")
	restored.Origin = events.Origin{Kind: events.OriginRestored}
	f.server.Announce(restored)
	f.server.Announce(ban("192.0.2.7/32", filter, "invalid user"))
	f.server.Announce(ban("192.0.2.8/32", manual, ""))
	f.server.Announce(ban("2001:db8:1::/64", peer, ""))
	f.server.Announce(events.Event{Kind: events.Unban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"),
		BannedAt: at, Expires: until, Count: 3, Origin: manual, BanOrigin: filter, Rule: "invalid user", Reason: "manual"})
	f.server.Announce(events.Event{Kind: events.Unban, Jail: "sshd", Prefix: netip.MustParsePrefix("2001:db8:1::/64"),
		Count: 3, Origin: peer, BanOrigin: peer, Reason: "peer"})
	f.server.Announce(events.Event{Kind: events.Unban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.8/32"),
		Count: 3, BanOrigin: manual, Reason: "expired"})

	atUsec, untilUsec := uint64(at.UnixMicro()), uint64(until.UnixMicro())
	want := []struct {
		name string
		body []any
	}{
		{bannedSignalName, []any{"sshd", "192.0.2.7", untilUsec, uint32(3)}},
		{bannedExSignalName, []any{"sshd", "192.0.2.7", atUsec, untilUsec, uint32(3), "filter", uint32(0), "", "invalid user"}},
		{bannedSignalName, []any{"sshd", "192.0.2.8", untilUsec, uint32(3)}},
		{bannedExSignalName, []any{"sshd", "192.0.2.8", atUsec, untilUsec, uint32(3), "manual", uint32(1000), "", ""}},
		{bannedSignalName, []any{"sshd", "2001:db8:1::/64", untilUsec, uint32(3)}},
		{bannedExSignalName, []any{"sshd", "2001:db8:1::/64", atUsec, untilUsec, uint32(3), "peer", uint32(0), "h1", ""}},
		{unbannedSignalName, []any{"sshd", "192.0.2.7", "manual"}},
		{unbannedExSignalName, []any{"sshd", "192.0.2.7", "manual", uint32(3), "filter", uint32(0), "", "invalid user",
			"manual", uint32(1000), ""}},
		{unbannedSignalName, []any{"sshd", "2001:db8:1::/64", "peer"}},
		{unbannedExSignalName, []any{"sshd", "2001:db8:1::/64", "peer", uint32(3), "peer", uint32(0), "h1", "",
			"peer", uint32(0), "h1"}},
		{unbannedSignalName, []any{"sshd", "192.0.2.8", "expired"}},
		{unbannedExSignalName, []any{"sshd", "192.0.2.8", "expired", uint32(3), "manual", uint32(1000), "", "",
			ByDaemon, uint32(0), ""}},
	}
	for i, w := range want {
		s := nextBanSignal(t, ch)
		if s.Path != ManagerPath || s.Name != w.name || !reflect.DeepEqual(s.Body, w.body) {
			t.Errorf("signal %d: %s %s %#v\nwant %s %#v", i, s.Path, s.Name, s.Body, w.name, w.body)
		}
	}
	// arg5='peer' on BannedEx: the peer's ban, and nothing else.
	s := nextBanSignal(t, peers)
	if s.Name != bannedExSignalName || s.Body[1] != "2001:db8:1::/64" {
		t.Errorf("the peers' match got %s %v", s.Name, s.Body)
	}
	select {
	case s := <-peers:
		t.Errorf("the peers' match got a second signal: %s %v", s.Name, s.Body)
	case <-time.After(200 * time.Millisecond):
	}
}

// nextBanSignal returns the next ban or unban signal on ch (PropertiesChanged and the bus's own
// signals are skipped).
func nextBanSignal(t *testing.T, ch chan *dbus.Signal) *dbus.Signal {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-ch:
			switch s.Name {
			case bannedSignalName, bannedExSignalName, unbannedSignalName, unbannedExSignalName:
				return s
			}
		case <-timeout:
			t.Fatal("no ban or unban signal within 5s")
			return nil
		}
	}
}

// TestWatchBans: Client.WatchBans decodes BannedEx and UnbannedEx in order, skips the SPEC's
// signals and PropertiesChanged, and returns nil when its context ends.
func TestWatchBans(t *testing.T) {
	f := newFixture(t)
	got := make(chan BanSignal, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.client.WatchBans(ctx, func(b BanSignal) { got <- b }) }()

	at := time.UnixMicro(1_764_064_800_000_000)
	peer := events.Origin{Kind: events.OriginPeer, Peer: "h1"}
	manual := events.Origin{Kind: events.OriginManual, UID: 1000}
	ban := events.Event{Kind: events.Ban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"),
		BannedAt: at, Expires: at.Add(time.Hour), Count: 2, Origin: peer, BanOrigin: peer}
	unban := events.Event{Kind: events.Unban, Jail: "sshd", Prefix: netip.MustParsePrefix("192.0.2.7/32"),
		Count: 2, Origin: manual, BanOrigin: peer, Reason: "manual"}
	want := []BanSignal{
		{Jail: "sshd", Prefix: "192.0.2.7", BannedAtUsec: 1_764_064_800_000_000, ExpiresUsec: 1_764_068_400_000_000,
			BanCount: 2, Origin: "peer", Peer: "h1"},
		{Unban: true, Jail: "sshd", Prefix: "192.0.2.7", BanCount: 2, Reason: "manual", Origin: "peer", Peer: "h1",
			By: "manual", ByUID: 1000},
	}
	// The subscription is in place once a first announcement comes through.
	deadline := time.After(5 * time.Second)
	var first BanSignal
	for subscribed := false; !subscribed; {
		f.server.Announce(ban)
		select {
		case first = <-got:
			subscribed = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("WatchBans received nothing within 5s")
		}
	}
	f.server.CountersChanged("sshd")
	f.server.Announce(unban)
	var second BanSignal
	for second.Prefix == "" {
		select {
		case b := <-got:
			if b.Unban || !reflect.DeepEqual(b, first) { // skip the repeats of the first
				second = b
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no UnbannedEx within 5s")
		}
	}
	if !reflect.DeepEqual([]BanSignal{first, second}, want) {
		t.Errorf("WatchBans got\n%+v\n%+v\nwant\n%+v\n%+v", first, second, want[0], want[1])
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchBans after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchBans did not return after cancel")
	}
}
