package bus

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
)

// fakeBackend is an in-memory Backend: jails with counters and bans, and a record of the calls.
type fakeBackend struct {
	mu      sync.Mutex
	jails   map[string]*JailInfo
	bans    map[string][]BanInfo
	reader  string
	reloads int
	calls   []string
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		reader: "idle",
		jails: map[string]*JailInfo{
			"sshd": {
				Name: "sshd", Filter: "sshd",
				JournalMatch: []string{"_UID=0", "_COMM=sshd", "+", "_UID=0", "_SYSTEMD_UNIT=ssh.service"},
				FindTime:     600, BanTime: 600, MaxRetry: 5,
				CurrentlyFailed: 2, TotalFailed: 17, CurrentlyBanned: 1, TotalBanned: 3,
			},
			"nginx-auth": {
				Name: "nginx-auth", Filter: "nginx-auth",
				JournalMatch: []string{"_SYSTEMD_UNIT=nginx.service"},
				FindTime:     300, BanTime: 3600, MaxRetry: 3,
			},
		},
		bans: map[string][]BanInfo{
			"sshd": {{Address: "192.0.2.7", BannedAtUsec: 1_764_064_800_000_000, ExpiresUsec: 1_764_065_400_000_000, BanCount: 1}},
		},
	}
}

func (f *fakeBackend) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeBackend) Version() string { return "0.1.0-test" }

func (f *fakeBackend) Reader() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reader
}

func (f *fakeBackend) JailNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.jails {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (f *fakeBackend) Jail(name string) (JailInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jails[name]
	if !ok {
		return JailInfo{}, fmt.Errorf("jail %q: %w", name, ErrNoSuchJail)
	}
	return *j, nil
}

func (f *fakeBackend) setFailed(name string, n uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jails[name].CurrentlyFailed = n
	f.jails[name].TotalFailed = uint64(n)
}

// Ban bans the canonical form of address (an IPv4-mapped address as IPv4), as the daemon does, and
// refuses a prefix holding 127.0.0.1 as the daemon refuses one holding an ignored address.
func (f *fakeBackend) Ban(jail, address string, seconds uint64) (BanInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jails[jail]; !ok {
		return BanInfo{}, fmt.Errorf("jail %q: %w", jail, ErrNoSuchJail)
	}
	canonical := address
	if a, err := netip.ParseAddr(address); err == nil {
		canonical = a.Unmap().String()
	} else if p, err := netip.ParsePrefix(address); err != nil {
		return BanInfo{}, fmt.Errorf("%w: %q", ErrInvalidAddress, address)
	} else if p.Contains(netip.MustParseAddr("127.0.0.1")) {
		return BanInfo{}, fakeRefusal(address + " contains 127.0.0.0/8, which jail " + jail + " ignores")
	}
	f.record("Ban %s %s %d", jail, address, seconds)
	b := BanInfo{Address: canonical, BannedAtUsec: 1, ExpiresUsec: 1 + seconds*1e6, BanCount: 1}
	f.bans[jail] = append(f.bans[jail], b)
	return b, nil
}

// fakeRefusal is a refused ban whose text is the whole message, as the daemon's are.
type fakeRefusal string

func (r fakeRefusal) Error() string        { return string(r) }
func (r fakeRefusal) Is(target error) bool { return target == ErrInvalidAddress }

// Unban lifts the ban of the canonical form of address (an IPv4-mapped address as IPv4, a /32 or
// /128 as its address), as the daemon does, and returns it.
func (f *fakeBackend) Unban(jail, address string) (BanInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jails[jail]; !ok {
		return BanInfo{}, fmt.Errorf("jail %q: %w", jail, ErrNoSuchJail)
	}
	canonical := address
	if a, err := netip.ParseAddr(address); err == nil {
		canonical = a.Unmap().String()
	} else if p, err := netip.ParsePrefix(address); err == nil && p.IsSingleIP() {
		canonical = p.Addr().Unmap().String()
	}
	for i, b := range f.bans[jail] {
		if b.Address == canonical {
			f.bans[jail] = append(f.bans[jail][:i], f.bans[jail][i+1:]...)
			f.record("Unban %s %s", jail, address)
			return b, nil
		}
	}
	return BanInfo{}, fmt.Errorf("%s in jail %s: %w", address, jail, ErrNotBanned)
}

func (f *fakeBackend) UnbanAll(jail string) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jails[jail]; !ok {
		return 0, fmt.Errorf("jail %q: %w", jail, ErrNoSuchJail)
	}
	n := uint32(len(f.bans[jail]))
	delete(f.bans, jail)
	f.record("UnbanAll %s", jail)
	return n, nil
}

func (f *fakeBackend) ListBans(jail string) ([]BanInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.jails[jail]; !ok {
		return nil, fmt.Errorf("jail %q: %w", jail, ErrNoSuchJail)
	}
	return append([]BanInfo(nil), f.bans[jail]...), nil
}

func (f *fakeBackend) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.record("Reload")
	return nil
}

func (f *fakeBackend) Metrics() (string, error) {
	f.record("Metrics")
	return "gaoler_bans_active{jail=\"sshd\"} 1\n", nil
}

func (f *fakeBackend) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}
