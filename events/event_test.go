package events

import "testing"

// TestMaker: a new ban was made by its Origin; an unban and a restored ban name the ban's maker in
// BanOrigin.
func TestMaker(t *testing.T) {
	peer := Origin{Kind: OriginPeer, Peer: "h1"}
	manual := Origin{Kind: OriginManual, UID: 1000}
	for _, tc := range []struct {
		name string
		ev   Event
		want Origin
	}{
		{"new ban", Event{Kind: Ban, Origin: peer}, peer},
		{"restored ban", Event{Kind: Ban, Origin: Origin{Kind: OriginRestored}, BanOrigin: peer}, peer},
		{"unban", Event{Kind: Unban, Origin: manual, BanOrigin: peer}, peer},
	} {
		if got := tc.ev.Maker(); got != tc.want {
			t.Errorf("%s: Maker() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
