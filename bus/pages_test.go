package bus

import (
	"errors"
	"strings"
	"testing"
)

// pageFake is a fakeBackend that lists its bans a page at a time, from a sorted list.
type pageFake struct {
	*fakeBackend
	all   []BanInfo
	limit int // the limit BanPage was last called with
}

func (f *pageFake) BanPage(jail, after string, limit int) ([]BanInfo, bool, error) {
	if _, err := f.Jail(jail); err != nil {
		return nil, false, err
	}
	f.limit = limit
	i := 0
	for after != "" && i < len(f.all) && f.all[i].Address <= after {
		i++
	}
	end := min(i+limit, len(f.all))
	return f.all[i:end], end < len(f.all), nil
}

// TestListBansPage: the pages give each ban once, next is the last address of a page that has a
// follower and "" after the last, a limit of 0 is MaxPage, an unknown jail is NoSuchJail, and any
// user may call it.
func TestListBansPage(t *testing.T) {
	f := &pageFake{fakeBackend: newFakeBackend()}
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"} {
		f.all = append(f.all, BanInfo{Address: a, BannedAtUsec: 1, ExpiresUsec: 2, BanCount: 1})
	}
	c, addr := serveBackend(t, f)
	var got []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		bans, next, err := c.BanPage("sshd", after, 2)
		if err != nil {
			t.Fatalf("BanPage after %q: %v", after, err)
		}
		for _, b := range bans {
			got = append(got, b.Address)
		}
		if next == "" {
			break
		}
		if next != bans[len(bans)-1].Address {
			t.Errorf("next %q, want the page's last address %q", next, bans[len(bans)-1].Address)
		}
		after = next
	}
	if strings.Join(got, " ") != "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5" {
		t.Errorf("pages listed %v", got)
	}
	if _, _, err := c.BanPage("sshd", "", 0); err != nil || f.limit != MaxPage {
		t.Errorf("limit 0: %v, backend asked for %d, want MaxPage", err, f.limit)
	}
	if _, _, err := c.BanPage("nosuch", "", 1); !errors.Is(err, ErrNoSuchJail) {
		t.Errorf("BanPage(nosuch): %v, want NoSuchJail", err)
	}
	out, err := (&fixture{addr: addr}).busctl(t, "nobody", "call", BusName, string(JailPath("sshd")), JailInterface, "ListBansPage", "su", "192.0.2.4", "5")
	if err != nil || strings.TrimSpace(out) != `a(sttu)s 1 "192.0.2.5" 1 2 1 ""` {
		t.Errorf("as nobody, busctl call ListBansPage: %v: %s", err, out)
	}
	plain, _ := serveBackend(t, newFakeBackend())
	if _, _, err := plain.BanPage("sshd", "", 1); err == nil {
		t.Error("BanPage from a backend without pages: no error")
	}
}
