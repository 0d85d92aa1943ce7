package jails

import (
	"math"
	"net/netip"
	"time"
)

// DefaultMaxTracked is the number of failure windows a jail keeps when Settings.MaxTracked is 0. Past
// it, the window that failed least recently is forgotten. At about 175 bytes per tracked address
// (BenchmarkTrackedAddressBytes, maxretry 5) this bounds a jail's windows to some 18 MB under a flood of distinct
// addresses.
const DefaultMaxTracked = 100000

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

// key returns what a failure from a is counted and banned by: the address, or its IPv6 /N.
func (s *Settings) key(a netip.Addr) netip.Prefix {
	if a.Is6() && s.IPv6Prefix > 0 && s.IPv6Prefix < 128 {
		p, _ := a.Prefix(s.IPv6Prefix)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}
