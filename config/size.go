package config

import (
	"fmt"
	"math"
	"strings"
)

// sizeUnits are the suffixes a size may carry, as systemd's MemoryMax= reads them: powers of 1024.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
	{"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}, {"B", 0},
}

// ParseSize parses a configuration size in bytes: digits with an optional unit, K, M, G or T (also
// written KiB, MiB, GiB, TiB; powers of 1024) or B, such as "192MiB", "1G" or "65536".
func ParseSize(s string) (int64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	if num == "" || !allDigits(num) {
		return 0, fmt.Errorf("bad size %q: use a number of bytes with K, M, G or T (powers of 1024), e.g. \"192M\"", s)
	}
	n, err := parseCount(num)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return n << shift, nil
}

// size accepts a size string (ParseSize) or a TOML integer number of bytes, at least 0.
func (c *checker) size(v any, path []string) (int64, bool) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			c.errorf(path, -1, "must not be negative")
			return 0, false
		}
		return x, true
	case string:
		n, err := ParseSize(x)
		if err != nil {
			c.errorf(path, -1, "%v", err)
			return 0, false
		}
		return n, true
	}
	c.wrongType(path, -1, v, `a size ("192M", "1G") or a number of bytes`)
	return 0, false
}
