package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/gaoler/gaoler/events"
)

// BucketPrefix starts the name of every host's bucket: gaoler-<host>.
const BucketPrefix = "gaoler-"

// Bucket returns the name of host's bucket.
func Bucket(host string) string { return BucketPrefix + host }

// jailRE is a jail's name as the config allows it: no dot, so the first dot of a key ends it.
var jailRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// Key returns the bucket key of a ban: "<jail>.<address>", an IPv6 address's colons written as '_'
// (NATS keys take letters, digits and "-/_=."), a prefix with its "/bits".
func Key(jail string, p netip.Prefix) string {
	s := p.Addr().String()
	if !p.IsSingleIP() {
		s = p.String()
	}
	return jail + "." + strings.ReplaceAll(s, ":", "_")
}

// ErrBadKey is a key or value that no gaoler wrote.
var ErrBadKey = errors.New("bad fleet key")

// ParseKey is Key's inverse. It accepts only what Key writes: a valid jail name and an address or a
// masked prefix.
func ParseKey(key string) (jail string, p netip.Prefix, err error) {
	jail, addr, ok := strings.Cut(key, ".")
	if !ok || !jailRE.MatchString(jail) {
		return "", netip.Prefix{}, fmt.Errorf("%w %q", ErrBadKey, key)
	}
	addr = strings.ReplaceAll(addr, "_", ":")
	if strings.Contains(addr, "/") {
		p, err = netip.ParsePrefix(addr)
		if err != nil || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return "", netip.Prefix{}, fmt.Errorf("%w %q", ErrBadKey, key)
		}
	} else {
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Is4In6() || a.Zone() != "" {
			return "", netip.Prefix{}, fmt.Errorf("%w %q", ErrBadKey, key)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if Key(jail, p) != key {
		return "", netip.Prefix{}, fmt.Errorf("%w %q", ErrBadKey, key) // not the canonical spelling
	}
	return jail, p, nil
}

// Value is what a host stores under a ban's key in its bucket.
type Value struct {
	Origin   string    `json:"origin"`    // the host that banned: the bucket's owner
	Jail     string    `json:"jail"`      // as in the key
	Address  string    `json:"address"`   // as in the key, written as users read it
	Count    int       `json:"count"`     // the origin's ban count of the address, this ban included
	Reason   string    `json:"reason"`    // "filter: <rule>" or "manual"
	BannedAt time.Time `json:"banned_at"` // by the origin's clock: shown, never used to time the ban
	BanTime  int64     `json:"bantime"`   // seconds: the key's TTL when it was written
}

// maxValue is the largest value a peer may store; anything longer is refused unread.
const maxValue = 4096

// decodeValue parses and checks a peer's value against the key and bucket it was read from.
func decodeValue(data []byte, peer, jail string, p netip.Prefix) (Value, error) {
	var v Value
	if len(data) > maxValue {
		return v, fmt.Errorf("%w: value of %d bytes", ErrBadKey, len(data))
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: value: %v", ErrBadKey, err)
	}
	switch {
	case v.Origin != peer:
		return v, fmt.Errorf("%w: origin %q in the bucket of %s", ErrBadKey, v.Origin, peer)
	case v.Jail != jail || v.Address != events.PrefixString(p):
		return v, fmt.Errorf("%w: value for %s %s under key %s", ErrBadKey, v.Jail, v.Address, Key(jail, p))
	case v.BanTime <= 0:
		return v, fmt.Errorf("%w: bantime %d", ErrBadKey, v.BanTime)
	case v.Count < 0 || len(v.Reason) > 256:
		return v, fmt.Errorf("%w: count or reason out of range", ErrBadKey)
	}
	return v, nil
}
