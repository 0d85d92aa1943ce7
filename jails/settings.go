package jails

import (
	"math"
	"net/netip"
	"time"
)

// DefaultMaxTracked is the number of failure windows a jail keeps when Settings.MaxTracked is 0. Past
// it, the window that failed least recently is forgotten, so the cap is what an attacker with more
// addresses than it could use to evade: it is sized so that evading takes more than a million distinct
// addresses failing within findtime, while a jail's windows stay bounded (at the bytes per tracked
// address BenchmarkTrackedAddressBytes reports, about 130 MiB at the cap; a flood of 200,000
// distinct addresses costs a fifth of that).
const DefaultMaxTracked = 1_000_000

// DefaultIPv6SubnetLimit is the ipv6_subnet_limit of the shipped configuration: an IPv6 /64 of which
// more than this many distinct addresses failed within findtime is banned whole.
const DefaultIPv6SubnetLimit = 16

// HistoryRetention is how long the engine remembers that a prefix was banned after its last ban
// ended, for repeat-offender increments.
const HistoryRetention = 30 * 24 * time.Hour

// Settings are a jail's knobs, filled by the config package.
type Settings struct {
	BanTime, FindTime time.Duration
	MaxRetry          int
	IgnoreIP          []netip.Prefix
	// IgnoreSelf ignores the host's own addresses, read when the jail is set (SetJail).
	IgnoreSelf bool
	// IPv6Prefix is the prefix length an IPv6 offender is counted and banned by: 128 (or 0) is the
	// address itself, 64 its /64.
	IPv6Prefix int
	Increment  Increment
	// MaxTracked caps the failure windows kept for the jail; 0 is DefaultMaxTracked.
	MaxTracked int
	// IPv6SubnetLimit, when IPv6Prefix is longer than 64, also counts the distinct addresses of each
	// /64 that failed within findtime, and bans the /64 when more than this many did: an attacker
	// rotating through its /64 is banned instead of filling the jail's windows. A /64 holding an
	// address the jail ignores is never banned: past the limit, each of its new failing addresses is
	// banned alone. 0 counts nothing.
	IPv6SubnetLimit int
	// Trust is the trust after login (trust.go).
	Trust TrustSettings
}

// Increment makes repeat offenders' bans longer: BanTime * Factor^(previous bans of the prefix), at
// most MaxTime (0 = no cap); previous bans are counted in this jail, or in all jails with
// OverallJails.
type Increment struct {
	Enabled      bool
	Factor       float64
	MaxTime      time.Duration
	OverallJails bool
}

// banTime returns the ban time after previous bans.
func (s *Settings) banTime(previous int) time.Duration {
	d := s.BanTime
	if !s.Increment.Enabled || previous == 0 || s.Increment.Factor <= 0 {
		return d
	}
	f := float64(d) * math.Pow(s.Increment.Factor, float64(previous))
	limit := float64(math.MaxInt64)
	if s.Increment.MaxTime > 0 {
		limit = float64(s.Increment.MaxTime)
	}
	if f >= limit || math.IsNaN(f) {
		return time.Duration(limit)
	}
	return time.Duration(f)
}

func (s *Settings) maxTracked() int {
	if s.MaxTracked > 0 {
		return s.MaxTracked
	}
	return DefaultMaxTracked
}

// subnet returns the /64 whose distinct failing addresses are counted for a, and false when none is
// (IPv4, ipv6_prefix 64 or shorter, no limit).
func (s *Settings) subnet(a netip.Addr) (netip.Prefix, bool) {
	if !a.Is6() || s.IPv6SubnetLimit <= 0 || (s.IPv6Prefix > 0 && s.IPv6Prefix <= 64) {
		return netip.Prefix{}, false
	}
	p, _ := a.Prefix(64)
	return p, true
}

// keep is how many failure timestamps a window holds: maxretry-1 (the failure that reaches maxretry
// bans instead).
func (s *Settings) keep() int { return max(s.MaxRetry-1, 0) }

// key returns what a failure from a is counted and banned by: the address, or its IPv6 /N.
func (s *Settings) key(a netip.Addr) netip.Prefix {
	if a.Is6() && s.IPv6Prefix > 0 && s.IPv6Prefix < 128 {
		p, _ := a.Prefix(s.IPv6Prefix)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}
