package config

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// checker converts the merged TOML values into typed values, collecting one *Error per mistake.
type checker struct {
	m     *merged
	errs  []*Error
	warns []string
	seen  map[string]bool // warnings already given
}

func (c *checker) errorf(path []string, elem int, format string, args ...any) {
	file, p := c.m.at(path, elem)
	c.errs = append(c.errs, &Error{File: file, Line: p.Line, Col: p.Col, Key: keyName(path, elem), Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(path []string, format string, args ...any) {
	file, p := c.m.at(path, -1)
	w := (&Error{File: file, Line: p.Line, Col: p.Col, Key: keyName(path, -1), Msg: fmt.Sprintf(format, args...)}).Error()
	if !c.seen[w] {
		c.seen[w] = true
		c.warns = append(c.warns, w)
	}
}

// typeName names a decoded TOML value's type as the TOML specification does.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	}
	return "date-time"
}

func (c *checker) wrongType(path []string, elem int, v any, want string) {
	c.errorf(path, elem, "must be %s, not %s", want, article(typeName(v)))
}

func article(s string) string {
	if strings.IndexByte("aeiou", s[0]) >= 0 {
		return "an " + s
	}
	return "a " + s
}

// known rejects the keys of t that are not in allowed, suggesting the closest allowed one.
func (c *checker) known(t map[string]any, path []string, allowed ...string) {
	for _, k := range sortedKeys(t) {
		if contains(allowed, k) {
			continue
		}
		p := append(path[:len(path):len(path)], k)
		if s := closest(k, allowed); s != "" {
			c.errorf(p, -1, "unknown key (did you mean %q?)", s)
		} else {
			c.errorf(p, -1, "unknown key (known here: %s)", strings.Join(allowed, ", "))
		}
	}
}

func (c *checker) table(v any, path []string) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		c.wrongType(path, -1, v, "a table")
	}
	return t, ok
}

func (c *checker) str(v any, path []string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		c.wrongType(path, -1, v, "a string")
	}
	return s, ok
}

func (c *checker) boolean(v any, path []string) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		c.wrongType(path, -1, v, "a boolean (true or false)")
	}
	return b, ok
}

// integer accepts a TOML integer in [lo, hi].
func (c *checker) integer(v any, path []string, lo, hi int64) (int, bool) {
	n, ok := v.(int64)
	if !ok {
		c.wrongType(path, -1, v, "an integer")
		return 0, false
	}
	if n < lo || n > hi {
		if hi == math.MaxInt32 {
			c.errorf(path, -1, "must be at least %d, not %d", lo, n)
		} else {
			c.errorf(path, -1, "must be from %d to %d, not %d", lo, hi, n)
		}
		return 0, false
	}
	return int(n), true
}

// number accepts a TOML float or integer.
func (c *checker) number(v any, path []string) (float64, bool) {
	switch n := v.(type) {
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			c.errorf(path, -1, "must be a finite number")
			return 0, false
		}
		return n, true
	case int64:
		return float64(n), true
	}
	c.wrongType(path, -1, v, "a number")
	return 0, false
}

// oneOf accepts a string among choices.
func (c *checker) oneOf(v any, path []string, choices ...string) (string, bool) {
	s, ok := c.str(v, path)
	if !ok {
		return "", false
	}
	if !contains(choices, s) {
		c.errorf(path, -1, "%q is not %s", s, fmtList(choices))
		return "", false
	}
	return s, true
}

// strs accepts an array of strings; each element is passed to each (if not nil) to check it, with
// its index for messages. ok is false if any element was wrong.
func (c *checker) strs(v any, path []string, each func(i int, s string) bool) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		c.wrongType(path, -1, v, "an array of strings")
		return nil, false
	}
	out := make([]string, 0, len(a))
	good := true
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			c.wrongType(path, i, e, "a string")
			good = false
			continue
		}
		if each != nil && !each(i, s) {
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// duration accepts a duration string or an integer number of seconds, and requires it positive.
func (c *checker) duration(v any, path []string) (time.Duration, bool) {
	var d time.Duration
	switch x := v.(type) {
	case int64:
		if x > math.MaxInt64/int64(time.Second) {
			c.errorf(path, -1, "duration too long")
			return 0, false
		}
		d = time.Duration(x) * time.Second
	case string:
		var err error
		if d, err = ParseDuration(x); err != nil {
			c.errorf(path, -1, "%v", err)
			return 0, false
		}
	default:
		c.wrongType(path, -1, v, `a duration ("10m", "1h30m", "2d") or a number of seconds`)
		return 0, false
	}
	if d <= 0 {
		c.errorf(path, -1, "must be longer than zero")
		return 0, false
	}
	return d, true
}

// prefixes accepts addresses and CIDR prefixes; an address is its own /32 or /128.
func (c *checker) prefixes(v any, path []string) ([]netip.Prefix, bool) {
	out := []netip.Prefix{}
	_, ok := c.strs(v, path, func(i int, s string) bool {
		p, err := parsePrefix(s)
		if err != nil {
			c.errorf(path, i, "%v", err)
			return false
		}
		out = append(out, p)
		return true
	})
	return out, ok
}

// parsePrefix parses "192.0.2.7", "192.0.2.0/24", "2001:db8::/32"; an IPv4-mapped IPv6 address is
// taken as the IPv4 address, and host bits are cleared.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("bad CIDR prefix %q", s)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad address %q (want an IPv4 or IPv6 address or a CIDR prefix; host names are not resolved)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func sortedKeys(t map[string]any) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// closest returns the candidate within two edits of s, if there is one.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
