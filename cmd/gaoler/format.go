package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// bold returns s in bold when colour is on.
func (e *env) bold(s string) string {
	if !e.color {
		return s
	}
	return "\x1b[1m" + s + "\x1b[0m"
}

// red returns s in red when colour is on.
func (e *env) red(s string) string {
	if !e.color {
		return s
	}
	return "\x1b[31m" + s + "\x1b[0m"
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<HOST>" stays readable
	return enc.Encode(v)
}

// humanDuration writes d for humans with its two largest units: "2d3h", "3h12m", "9m12s", "45s".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "0s"
	}
	units := []struct {
		suffix string
		size   time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	var parts []string
	for _, u := range units {
		if n := d / u.size; n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.suffix)
			d -= n * u.size
		} else if len(parts) > 0 {
			break
		}
		if len(parts) == 2 {
			break
		}
	}
	return strings.Join(parts, "")
}

// remaining says how long until expires, as "9m12s left", or "expiring" when it is due.
func remaining(now, expires time.Time) string {
	d := expires.Sub(now).Round(time.Second)
	if d <= 0 {
		return "expiring"
	}
	return humanDuration(d) + " left"
}

// parseDuration parses the durations of gaoler's configuration and command line: "90s", "10m",
// "1h30m", "2d", "1w", combinations such as "1d12h", or an integer number of seconds.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	units := map[byte]time.Duration{
		's': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour,
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 10m, 1h30m, 2d, 1w or seconds)", s)
		}
		unit, ok := units[rest[i]]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", s, rest[i:i+1])
		}
		n, err := strconv.ParseUint(rest[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		total += time.Duration(n) * unit
		if total > 100*365*24*time.Hour {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q is not positive", s)
	}
	return total, nil
}

// usecTime converts microseconds since the epoch to a time in loc.
func usecTime(usec uint64, loc *time.Location) time.Time {
	return time.UnixMicro(int64(usec)).In(loc)
}

const timeLayout = "2006-01-02 15:04:05"
