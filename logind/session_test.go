package logind

import (
	"net/netip"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

func TestSessionOf(t *testing.T) {
	if _, ok := sessionOf(map[string]dbus.Variant{"Remote": dbus.MakeVariant(false), "RemoteHost": dbus.MakeVariant("192.0.2.1")}); ok {
		t.Error("a local session with a RemoteHost was reported")
	}
	s, ok := sessionOf(map[string]dbus.Variant{"Remote": dbus.MakeVariant(true), "RemoteHost": dbus.MakeVariant("192.0.2.1"),
		"Name": dbus.MakeVariant("u"), "Service": dbus.MakeVariant("sshd"), "Timestamp": dbus.MakeVariant(uint64(1_000_000))})
	if !ok || s.Addr != netip.MustParseAddr("192.0.2.1") || !s.Started.Equal(time.Unix(1, 0)) {
		t.Errorf("sessionOf = %+v, %v", s, ok)
	}
}
