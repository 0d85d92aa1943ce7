package bus

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// detailFake is a fakeBackend that tells who made its bans.
type detailFake struct {
	*fakeBackend
	details []BanDetail
}

func (f *detailFake) BanDetails(jail string) ([]BanDetail, error) {
	if _, err := f.Jail(jail); err != nil {
		return nil, err
	}
	if jail != "sshd" {
		return nil, nil
	}
	return f.details, nil
}

// TestListBansEx: ListBansEx gives each running ban with its origin, uid, peer and rule, to any user;
// an unknown jail is NoSuchJail, a jail without bans an empty array.
func TestListBansEx(t *testing.T) {
	want := []BanDetail{
		{Address: "192.0.2.7", BannedAtUsec: 1, ExpiresUsec: 2, BanCount: 1, Origin: "filter", Rule: "failed"},
		{Address: "192.0.2.8", BannedAtUsec: 3, ExpiresUsec: 4, BanCount: 2, Origin: "manual", UID: 1000},
		{Address: "2001:db8::/64", BannedAtUsec: 5, ExpiresUsec: 6, BanCount: 3, Origin: "peer", Peer: "h1"},
	}
	c, addr := serveBackend(t, &detailFake{fakeBackend: newFakeBackend(), details: want})
	got, err := c.BanDetails("sshd")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("BanDetails(sshd) = %+v, %v\nwant %+v", got, err, want)
	}
	if got, err := c.BanDetails("nginx-auth"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("BanDetails(nginx-auth) = %#v, %v; want an empty list", got, err)
	}
	if _, err := c.BanDetails("nosuch"); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("BanDetails(nosuch): %v, want NoSuchJail", err)
	}
	out, err := (&fixture{addr: addr}).busctl(t, "nobody", "call", BusName, string(JailPath("sshd")), JailInterface, "ListBansEx")
	if err != nil || !strings.HasPrefix(out, `a(sttususs) 3 "192.0.2.7" 1 2 1 "filter" 0 "" "failed"`) {
		t.Errorf("as nobody, busctl call ListBansEx: %v: %s", err, out)
	}
	// A backend that cannot tell is an error, not an empty list.
	plain, _ := serveBackend(t, newFakeBackend())
	if _, err := plain.BanDetails("sshd"); err == nil {
		t.Error("BanDetails from a backend without origins: no error")
	}
}
