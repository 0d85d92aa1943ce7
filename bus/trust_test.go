package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// trustFake is a fakeBackend that serves the Trust interface too.
type trustFake struct {
	*fakeBackend
	trusted map[string][]TrustInfo
}

func (f *trustFake) Trust(jail, address string, seconds uint64, uid uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jails[jail]; !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchJail, jail)
	}
	f.record("Trust %s %s %d uid=%d", jail, address, seconds, uid)
	f.trusted[jail] = append(f.trusted[jail], TrustInfo{Address: address, UntilUsec: 2, AtUsec: 1, Method: "manual"})
	return nil
}

func (f *trustFake) Untrust(jail, address string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Untrust %s %s", jail, address)
	for i, t := range f.trusted[jail] {
		if t.Address == address {
			f.trusted[jail] = append(f.trusted[jail][:i], f.trusted[jail][i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: %s in jail %s", ErrNotTrusted, address, jail)
}

func (f *trustFake) ListTrusted(jail string) ([]TrustInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jails[jail]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchJail, jail)
	}
	return append([]TrustInfo(nil), f.trusted[jail]...), nil
}

func (f *trustFake) TrustOf(jail, address string) ([]TrustInfo, error) {
	list, err := f.ListTrusted(jail)
	for _, t := range list {
		if t.Address == address {
			return []TrustInfo{t}, err
		}
	}
	return nil, err
}

func (f *trustFake) TrustSettings(jail string) (uint64, error) {
	if _, err := f.ListTrusted(jail); err != nil {
		return 0, err
	}
	return 7 * 86400, nil
}

// newTrustFixture is newFixture's bus and client with a server whose backend serves Trust.
func newTrustFixture(t *testing.T) (*trustFake, *Client, string) {
	t.Helper()
	fake := &trustFake{fakeBackend: newFakeBackend(), trusted: map[string][]TrustInfo{
		"sshd": {{Address: "192.0.2.10", UntilUsec: 1_764_669_600_000_000, AtUsec: 1_764_064_800_000_000, User: "admin", Method: "publickey", Logins: 2}},
	}}
	c, addr := serveBackend(t, fake)
	return fake, c, addr
}

func TestTrustMethods(t *testing.T) {
	fake, c, _ := newTrustFixture(t)
	list, err := c.ListTrusted("sshd")
	if err != nil || len(list) != 1 || list[0] != fake.trusted["sshd"][0] {
		t.Fatalf("ListTrusted = %+v, %v", list, err)
	}
	if tr, ok, err := c.TrustOf("sshd", "192.0.2.10"); err != nil || !ok || tr.User != "admin" {
		t.Fatalf("TrustOf = %+v, %v, %v", tr, ok, err)
	}
	if _, ok, err := c.TrustOf("sshd", "192.0.2.99"); err != nil || ok {
		t.Fatalf("TrustOf an untrusted address = %v, %v", ok, err)
	}
	if err := c.Trust("sshd", "198.51.100.4", 3600); err != nil {
		t.Fatal(err)
	}
	if err := c.Trust("sshd", "198.51.100.0/24", 0); !errors.Is(err, ErrInvalidAddress) {
		t.Fatalf("Trust of a prefix: %v, want InvalidAddress", err)
	}
	if err := c.Trust("nope", "198.51.100.4", 0); !errors.Is(err, ErrNoSuchJail) {
		t.Fatalf("Trust in no jail: %v", err)
	}
	after, n, err := c.TrustAfterLogin("sshd")
	if err != nil || after != 7*86400 || n != 2 {
		t.Fatalf("TrustAfterLogin = %d, %d, %v", after, n, err)
	}
	if err := c.Untrust("sshd", "198.51.100.4"); err != nil {
		t.Fatal(err)
	}
	if err := c.Untrust("sshd", "198.51.100.4"); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("second Untrust: %v, want NotTrusted", err)
	}
	if got, want := strings.Join(fake.takeCalls(), "\n"), "Trust sshd 198.51.100.4 3600 uid=0\nUntrust sshd 198.51.100.4\nUntrust sshd 198.51.100.4"; got != want {
		t.Fatalf("backend calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestTrustPolicy(t *testing.T) {
	fake, _, addr := newTrustFixture(t)
	f := &fixture{addr: addr}
	sshd := string(JailPath("sshd"))
	out, err := f.busctl(t, "", "introspect", BusName, sshd)
	if err != nil || !strings.Contains(out, TrustInterface) || !strings.Contains(out, ".ListTrusted") {
		t.Fatalf("busctl introspect %s: %v\n%s", sshd, err, out)
	}
	for _, args := range [][]string{
		{"call", BusName, sshd, TrustInterface, "ListTrusted"},
		{"call", BusName, sshd, TrustInterface, "TrustOf", "s", "192.0.2.10"},
		{"get-property", BusName, sshd, TrustInterface, "CurrentlyTrusted"},
	} {
		if out, err := f.busctl(t, "nobody", args...); err != nil {
			t.Errorf("as nobody, busctl %s refused: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, args := range [][]string{
		{"call", BusName, sshd, TrustInterface, "Trust", "st", "192.0.2.9", "0"},
		{"call", BusName, sshd, TrustInterface, "Untrust", "s", "192.0.2.10"},
	} {
		out, err := f.busctl(t, "nobody", args...)
		if err == nil || !strings.Contains(out, "denied") {
			t.Errorf("as nobody, busctl %s: %v: %s; want access denied", strings.Join(args, " "), err, out)
		}
	}
	if calls := fake.takeCalls(); len(calls) != 0 {
		t.Errorf("refused calls reached the backend: %v", calls)
	}
}
