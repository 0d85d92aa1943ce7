package config

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// durationUnits are the units a duration string may use, longest span first.
var durationUnits = map[byte]time.Duration{
	's': time.Second,
	'm': time.Minute,
	'h': time.Hour,
	'd': 24 * time.Hour,
	'w': 7 * 24 * time.Hour,
}

// ParseDuration parses a configuration duration: one or more integer-unit pairs such as "90s", "10m",
// "1h30m", "2d", "1w" or "1d12h", with the units s, m, h, d (24 hours) and w (7 days). A string of digits
// alone is a number of seconds, as an integer TOML value is. Zero and negative durations are refused by
// the callers that need a positive one, not here.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if allDigits(s) {
		return secondsDuration(s)
	}
	var total time.Duration
	for i := 0; i < len(s); {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if start == i {
			return 0, fmt.Errorf("bad duration %q: expected a number at %q (use e.g. \"90s\", \"10m\", \"1h30m\", \"2d\", \"1w\")", s, s[i:])
		}
		u := i
		for u < len(s) && (s[u] >= 'a' && s[u] <= 'z' || s[u] >= 'A' && s[u] <= 'Z') {
			u++
		}
		if i < len(s) && s[i] == '.' {
			return 0, fmt.Errorf("bad duration %q: no fractions; write e.g. \"1h30m\" for 1.5 hours", s)
		}
		if u == i {
			return 0, fmt.Errorf("bad duration %q: number %s has no unit (s, m, h, d or w)", s, s[start:i])
		}
		unit, ok := durationUnits[s[i]]
		if !ok || u != i+1 {
			return 0, fmt.Errorf("bad duration %q: unknown unit %q (use s, m, h, d or w)", s, s[i:u])
		}
		n, err := parseCount(s[start:i])
		if err != nil || n > int64(math.MaxInt64/unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, fmt.Errorf("bad duration %q: too long", s)
		}
		total += time.Duration(n) * unit
		i++
	}
	return total, nil
}

// secondsDuration turns a string of digits into that many seconds.
func secondsDuration(s string) (time.Duration, error) {
	n, err := parseCount(s)
	if err != nil || n > int64(math.MaxInt64/time.Second) {
		return 0, fmt.Errorf("bad duration %q: too long", s)
	}
	return time.Duration(n) * time.Second, nil
}

// parseCount parses a non-negative decimal integer without overflowing.
func parseCount(s string) (int64, error) {
	var n int64
	for i := 0; i < len(s); i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, errors.New("overflow")
		}
		n = n*10 + d
	}
	return n, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// FormatDuration writes d in the configuration's own units, largest first ("1d12h", "10m", "90s" ->
// "1m30s"), the inverse of ParseDuration for whole seconds. It is what the tools print.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	var b []byte
	for _, u := range []struct {
		unit time.Duration
		name byte
	}{{7 * 24 * time.Hour, 'w'}, {24 * time.Hour, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}, {time.Second, 's'}} {
		if n := d / u.unit; n > 0 {
			b = fmt.Appendf(b, "%d%c", n, u.name)
			d -= n * u.unit
		}
	}
	return string(b)
}
