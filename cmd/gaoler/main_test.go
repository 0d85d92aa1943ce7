package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/bus"
	"github.com/gaoler/gaoler/internal/testenv"
)

// fakeDaemon answers as a daemon with two jails would, or fails every call with err.
type fakeDaemon struct {
	err    error
	jails  map[string]bus.JailInfo
	bans   map[string][]bus.BanInfo
	trust  map[string][]bus.TrustInfo // trust_test.go
	calls  []string
	closed bool
}

// now is the fixed clock of the tests: 2026-11-25 10:00:48 UTC.
var now = time.Date(2026, 11, 25, 10, 0, 48, 0, time.UTC)

func usec(t time.Time) uint64 { return uint64(t.UnixMicro()) }

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{
		jails: map[string]bus.JailInfo{
			"sshd": {
				Name: "sshd", Filter: "sshd",
				JournalMatch: []string{"_UID=0", "_COMM=sshd", "+", "_UID=0", "_COMM=sshd-session", "+",
					"_UID=0", "_SYSTEMD_UNIT=ssh.service"},
				FindTime: 600, BanTime: 600, MaxRetry: 5,
				CurrentlyFailed: 2, TotalFailed: 17, CurrentlyBanned: 2, TotalBanned: 3,
			},
			"nginx-auth": {
				Name: "nginx-auth", Filter: "nginx-auth", JournalMatch: []string{"_SYSTEMD_UNIT=nginx.service"},
				FindTime: 300, BanTime: 3600, MaxRetry: 3, TotalFailed: 4, TotalBanned: 1,
			},
		},
		trust: sampleTrust(),
		bans: map[string][]bus.BanInfo{
			"sshd": {
				{Address: "192.0.2.7", BannedAtUsec: usec(now.Add(-48 * time.Second)),
					ExpiresUsec: usec(now.Add(9*time.Minute + 12*time.Second)), BanCount: 1},
				{Address: "2001:db8::/64", BannedAtUsec: usec(now.Add(-2 * time.Hour)),
					ExpiresUsec: usec(now.Add(38*time.Hour + 5*time.Minute)), BanCount: 4},
			},
		},
	}
}

func (f *fakeDaemon) Version() (string, error) { return "0.1.0", f.err }
func (f *fakeDaemon) Reader() (string, error)  { return "hot, 12s left", f.err }
func (f *fakeDaemon) Jails() ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []string{"nginx-auth", "sshd"}, nil
}

func (f *fakeDaemon) Jail(name string) (bus.JailInfo, error) {
	if f.err != nil {
		return bus.JailInfo{}, f.err
	}
	j, ok := f.jails[name]
	if !ok {
		return j, &bus.RemoteError{Name: "io.github.gaoler.Gaoler1.Error.NoSuchJail", Message: "no such jail"}
	}
	return j, nil
}

// Ban answers as the daemon does: the canonical prefix banned (an IPv4-mapped address as IPv4), or the
// wider running ban that holds the address; a prefix holding 127.0.0.1 is refused as one holding an
// ignored address, and one with host bits set as such.
func (f *fakeDaemon) Ban(jail, address string, seconds uint64) (bus.BanInfo, error) {
	if _, err := f.Jail(jail); err != nil {
		return bus.BanInfo{}, err
	}
	refuse := func(msg string) (bus.BanInfo, error) {
		return bus.BanInfo{}, &bus.RemoteError{Name: "io.github.gaoler.Gaoler1.Error.InvalidAddress", Message: msg}
	}
	canonical := address
	if a, err := netip.ParseAddr(address); err == nil {
		canonical = a.Unmap().String()
	} else if p, err := netip.ParsePrefix(address); err != nil {
		return refuse(fmt.Sprintf("invalid address %q", address))
	} else if p != p.Masked() {
		return refuse(address + " has host bits set: did you mean " + p.Masked().String() + "?")
	} else if p.Contains(netip.MustParseAddr("127.0.0.1")) {
		return refuse(address + " contains 127.0.0.0/8, which jail " + jail + " ignores")
	} else if p.Contains(netip.IPv6Loopback()) {
		return refuse(address + " contains ::1, which jail " + jail + " ignores")
	}
	f.calls = append(f.calls, fmt.Sprintf("Ban %s %s %d", jail, address, seconds))
	for _, b := range f.bans[jail] {
		if p, err := netip.ParsePrefix(b.Address); err == nil && p.Bits() < 128 && p.Contains(netip.MustParseAddr(canonical)) {
			return b, nil
		}
	}
	return bus.BanInfo{Address: canonical, BannedAtUsec: usec(now), ExpiresUsec: usec(now.Add(time.Duration(seconds) * time.Second)), BanCount: 1}, nil
}

// Unban answers as the daemon does: the ban lifted, whose prefix is the canonical one (an IPv4-mapped
// address or a /32 lifts the IPv4 address), or the wider ban that held the address.
func (f *fakeDaemon) Unban(jail, address string) (bus.BanInfo, error) {
	if _, err := f.Jail(jail); err != nil {
		return bus.BanInfo{}, err
	}
	var p netip.Prefix
	if a, err := netip.ParseAddr(address); err == nil {
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	} else if p, err = netip.ParsePrefix(address); err != nil {
		return bus.BanInfo{}, &bus.RemoteError{Name: "io.github.gaoler.Gaoler1.Error.InvalidAddress", Message: "invalid address"}
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	for _, b := range f.bans[jail] {
		q, err := netip.ParsePrefix(b.Address)
		if err != nil {
			a := netip.MustParseAddr(b.Address)
			q = netip.PrefixFrom(a, a.BitLen())
		}
		if q == p || q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			f.calls = append(f.calls, fmt.Sprintf("Unban %s %s", jail, address))
			return b, nil
		}
	}
	return bus.BanInfo{}, &bus.RemoteError{Name: "io.github.gaoler.Gaoler1.Error.NotBanned", Message: "not banned"}
}

func (f *fakeDaemon) UnbanAll(jail string) (uint32, error) {
	if _, err := f.Jail(jail); err != nil {
		return 0, err
	}
	f.calls = append(f.calls, "UnbanAll "+jail)
	return uint32(len(f.bans[jail])), nil
}

func (f *fakeDaemon) ListBans(jail string) ([]bus.BanInfo, error) {
	if _, err := f.Jail(jail); err != nil {
		return nil, err
	}
	return f.bans[jail], nil
}

func (f *fakeDaemon) Reload() error {
	f.calls = append(f.calls, "Reload")
	return f.err
}

func (f *fakeDaemon) Metrics() (string, error) {
	f.calls = append(f.calls, "Metrics")
	return "# HELP gaoler_bans_active Bans in the kernel now.\n# TYPE gaoler_bans_active gauge\ngaoler_bans_active{jail=\"sshd\"} 2\n", f.err
}

func (f *fakeDaemon) Close() error { f.closed = true; return nil }

var sampleEvents = []string{
	"Nov 25 09:58:12 host gaolerd[812]: Failure from 192.0.2.7 in jail sshd (rule: auth-failed)",
	"Nov 25 10:00:00 host gaolerd[812]: Banned 192.0.2.7 in jail sshd for 10m (ban #1, until 2026-11-25 10:10:00)",
}

func TestCommands(t *testing.T) {
	notRunning := &bus.RemoteError{Name: "org.freedesktop.DBus.Error.ServiceUnknown",
		Message: "The name is not activatable"}
	denied := &bus.RemoteError{Name: "org.freedesktop.DBus.Error.AccessDenied",
		Message: "Rejected send message"}
	tests := []struct {
		name      string
		args      string
		err       error // every daemon call fails with it
		dialErr   error
		color     bool
		eventsErr error
		noEvents  bool
		calls     string // backend calls expected
	}{
		{name: "version", args: "--version"},
		{name: "help", args: "--help"},
		{name: "no-args", args: ""},
		{name: "unknown-command", args: "frobnicate"},
		{name: "status", args: "status"},
		{name: "status-json", args: "status --json"},
		{name: "status-jail", args: "status sshd"},
		{name: "status-jail-color", args: "status sshd", color: true},
		{name: "status-jail-json", args: "status --json sshd"},
		{name: "status-jail-no-events", args: "status nginx-auth", noEvents: true},
		{name: "status-events-error", args: "status sshd", eventsErr: errors.New("no journal")},
		{name: "status-no-such-jail", args: "status nosuch"},
		{name: "status-too-many", args: "status a b"},
		{name: "status-bad-flag", args: "status --bogus"},
		{name: "banned", args: "banned"},
		{name: "banned-json", args: "banned --json"},
		{name: "banned-empty", args: "banned nginx-auth"},
		{name: "banned-empty-json", args: "banned nginx-auth --json"},
		{name: "ban", args: "ban sshd 192.0.2.9 --for 1h30m", calls: "Ban sshd 192.0.2.9 5400"},
		{name: "ban-default", args: "ban nginx-auth 2001:db8::1", calls: "Ban nginx-auth 2001:db8::1 3600"},
		{name: "ban-flag-first", args: "ban --for 90 sshd 192.0.2.9", calls: "Ban sshd 192.0.2.9 90"},
		{name: "ban-bad-address", args: "ban sshd 192.0.2.300"},
		{name: "ban-mapped", args: "ban sshd ::ffff:192.0.2.9 --for 1h", calls: "Ban sshd ::ffff:192.0.2.9 3600"},
		{name: "ban-covered", args: "ban sshd 2001:db8::5 --for 1h", calls: "Ban sshd 2001:db8::5 3600"},
		{name: "ban-lockout", args: "ban sshd 0.0.0.0/0"},
		{name: "ban-lockout6", args: "ban sshd ::/0 --for 1h"},
		{name: "ban-host-bits", args: "ban sshd 127.0.0.0/7 --for 1h"},
		{name: "ban-bad-duration", args: "ban sshd 192.0.2.9 --for 10x"},
		{name: "ban-missing-address", args: "ban sshd"},
		{name: "ban-no-such-jail", args: "ban nosuch 192.0.2.9 --for 1m"},
		{name: "unban", args: "unban sshd 192.0.2.7", calls: "Unban sshd 192.0.2.7"},
		{name: "unban-mapped", args: "unban sshd ::ffff:192.0.2.7", calls: "Unban sshd ::ffff:192.0.2.7"},
		{name: "unban-slash32", args: "unban sshd 192.0.2.7/32", calls: "Unban sshd 192.0.2.7/32"},
		{name: "unban-covered", args: "unban sshd 2001:db8::5", calls: "Unban sshd 2001:db8::5"},
		{name: "unban-not-banned", args: "unban sshd 198.51.100.1"},
		{name: "unban-all", args: "unban --all", calls: "UnbanAll nginx-auth\nUnbanAll sshd"},
		{name: "unban-all-jail", args: "unban --all sshd", calls: "UnbanAll sshd"},
		{name: "unban-all-extra", args: "unban --all sshd 192.0.2.7"},
		{name: "reload", args: "reload", calls: "Reload"},
		{name: "trust", args: "trust sshd 198.51.100.4 --for 2h", calls: "Trust sshd 198.51.100.4 7200"},
		{name: "trust-default", args: "trust sshd 2001:db8::4", calls: "Trust sshd 2001:db8::4 0"},
		{name: "trust-prefix", args: "trust sshd 198.51.100.0/24"},
		{name: "trust-bad-duration", args: "trust sshd 198.51.100.4 --for soon"},
		{name: "untrust", args: "untrust sshd 192.0.2.10", calls: "Untrust sshd 192.0.2.10"},
		{name: "untrust-not-trusted", args: "untrust sshd 198.51.100.1"},
		{name: "untrust-denied", args: "untrust sshd 192.0.2.10", err: denied},
		{name: "trusted", args: "trusted"},
		{name: "trusted-json", args: "trusted sshd --json"},
		{name: "trusted-empty", args: "trusted nginx-auth"},
		{name: "ban-trusted", args: "ban sshd 192.0.2.10 --for 1h", calls: "Ban sshd 192.0.2.10 3600"},
		{name: "why", args: "why 192.0.2.7", calls: `Why 192.0.2.7 ""`},
		{name: "why-json", args: "why 192.0.2.7 --jail sshd --json", calls: `Why 192.0.2.7 "sshd"`},
		{name: "why-not", args: "why 198.51.100.4", calls: `Why 198.51.100.4 ""`},
		{name: "why-nothing", args: "why 203.0.113.5 --jail sshd", calls: `Why 203.0.113.5 "sshd"`},
		{name: "why-no-jail", args: "why 192.0.2.7 --jail nope", calls: `Why 192.0.2.7 "nope"`},
		{name: "why-prefix", args: "why 192.0.2.0/24"},
		{name: "why-denied", args: "why 192.0.2.7", err: denied, calls: `Why 192.0.2.7 ""`},
		{name: "metrics", args: "metrics", calls: "Metrics"},
		{name: "metrics-extra", args: "metrics sshd"},
		{name: "not-running", args: "status", err: notRunning},
		{name: "not-running-ban", args: "ban sshd 192.0.2.9", err: notRunning},
		{name: "no-bus", args: "banned", dialErr: errors.New("connect to the system bus: dial unix /run/dbus/system_bus_socket: connect: no such file or directory")},
		{name: "reload-bad-config", args: "reload", calls: "Reload", err: &bus.RemoteError{
			Name:    "io.github.gaoler.Gaoler1.Error.InvalidConfig",
			Message: "invalid configuration: /etc/gaoler/gaoler.toml:3:11: bantime: bad duration \"10x\"\n/etc/gaoler/jail.d/a.toml:2:1: jail.x.filter: unknown filter \"nope\""}},
		{name: "access-denied", args: "reload", err: denied, calls: "Reload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeDaemon()
			fake.err = tt.err
			var stdout, stderr bytes.Buffer
			e := &env{
				stdout: &stdout, stderr: &stderr,
				dial: func() (api, error) {
					if tt.dialErr != nil {
						return nil, tt.dialErr
					}
					return fake, nil
				},
				events: func(jail string, n int) ([]string, error) {
					if tt.noEvents {
						return nil, nil
					}
					return sampleEvents, tt.eventsErr
				},
				now:   func() time.Time { return now },
				loc:   time.UTC,
				color: tt.color,
			}
			code := e.run(strings.Fields(tt.args))
			testenv.Golden(t, tt.name+".golden", transcript(tt.args, code, stdout.String(), stderr.String()))
			if calls := strings.Join(fake.calls, "\n"); calls != tt.calls {
				t.Errorf("daemon calls:\n%s\nwant:\n%s", calls, tt.calls)
			}
		})
	}
}

// transcript is what a golden file holds: the command line, the exit code, stdout and stderr.
func transcript(args string, code int, stdout, stderr string) string {
	return fmt.Sprintf("$ gaoler %s\nexit %d\n--- stdout\n%s--- stderr\n%s", args, code, stdout, stderr)
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{45 * time.Second, "45s"},
		{9*time.Minute + 12*time.Second, "9m12s"},
		{time.Hour + 5*time.Second, "1h"},
		{3*time.Hour + 12*time.Minute + 9*time.Second, "3h12m"},
		{50 * time.Hour, "2d2h"},
		{15 * 24 * time.Hour, "2w1d"},
		{1500 * time.Millisecond, "2s"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"10m", 10 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"600", 600 * time.Second, true},
		{"", 0, false},
		{"10", 10 * time.Second, true},
		{"10x", 0, false},
		{"h", 0, false},
		{"1h30", 0, false},
		{"-5m", 0, false},
		{"0s", 0, false},
		{"99999999w", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args string
		pos  string
		all  bool
	}{
		{"a b", "a b", false},
		{"--all a", "a", true},
		{"a --all b", "a b", true},
		{"a b --all", "a b", true},
		{"a -- --all", "a --all", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		all := fs.Bool("all", false, "")
		pos, err := parseArgs(fs, strings.Fields(tt.args))
		if err != nil || strings.Join(pos, " ") != tt.pos || *all != tt.all {
			t.Errorf("parseArgs(%q) = %q, all=%v, %v; want %q, all=%v", tt.args, pos, *all, err, tt.pos, tt.all)
		}
	}
}
