package config

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gaoler/gaoler/jails"
)

// The keys of the trust after login, which [defaults] and every jail may set (gaoler.toml(5)).
var trustKeys = []string{"trust_after_login", "trust_methods", "trust_overalljails", "max_trusted"}

// DefaultTrustMethods are trust_methods when the config does not set them: key logins only. A
// password that an attacker guessed must not buy the attacker immunity from the jail for a week, and
// a logind session does not say how its user authenticated (a guessed password opens one too).
var DefaultTrustMethods = []string{"publickey"}

// trustMethods are the values trust_methods takes: sshd's authentication methods, "logind" for a
// remote session systemd-logind reports, and "any".
var trustMethods = []string{"publickey", "password", "keyboard-interactive", "hostbased", "gssapi-with-mic", "gssapi-keyex", "none", jails.MethodLogind, jails.MethodAny}

// defaultTrust is the built-in trust after login of every jail.
func defaultTrust() jails.TrustSettings {
	return jails.TrustSettings{
		After:   jails.DefaultTrustAfterLogin,
		Methods: append([]string(nil), DefaultTrustMethods...),
	}
}

// trustAfterLogin applies one trust key (k, at path p) onto s; it reports whether k is a trust key.
func (c *checker) trustAfterLogin(k string, v any, p []string, s *jails.TrustSettings) bool {
	switch k {
	case "trust_after_login":
		if d, ok := c.durationOrOff(v, p); ok {
			s.After = d
		}
	case "trust_overalljails":
		if b, ok := c.boolean(v, p); ok {
			s.OverallJails = b
		}
	case "max_trusted":
		if n, ok := c.integer(v, p, 0, math.MaxInt32); ok {
			s.MaxTrusted = n
		}
	case "trust_methods":
		var seen []string
		ms, ok := c.strs(v, p, func(i int, m string) bool {
			if !contains(trustMethods, m) {
				if s := closest(m, trustMethods); s != "" {
					c.errorf(p, i, "unknown method %q (did you mean %q?)", m, s)
				} else {
					c.errorf(p, i, "unknown method %q (known: %s)", m, strings.Join(trustMethods, ", "))
				}
				return false
			}
			if contains(seen, m) {
				c.errorf(p, i, "%q is listed twice", m)
				return false
			}
			seen = append(seen, m)
			return true
		})
		if !ok {
			break
		}
		if len(ms) == 0 {
			c.errorf(p, -1, `lists no method: to turn the trust after login off, set trust_after_login = "0"`)
			break
		}
		s.Methods = ms
	default:
		return false
	}
	return true
}

// durationOrOff accepts a duration as duration does, or "0" / 0 for off.
func (c *checker) durationOrOff(v any, path []string) (time.Duration, bool) {
	switch x := v.(type) {
	case int64:
		if x == 0 {
			return 0, true
		}
	case string:
		if strings.TrimSpace(x) == "0" {
			return 0, true
		}
	}
	return c.duration(v, path)
}

// WantsLogind reports whether an enabled jail takes systemd-logind's remote sessions as logins
// (trust_after_login on, and "logind" or "any" in trust_methods): only then does gaolerd follow logind.
func (c *Config) WantsLogind() bool {
	for _, j := range c.Enabled() {
		t := j.Settings.Trust
		if t.After > 0 && (slices.Contains(t.Methods, jails.MethodLogind) || slices.Contains(t.Methods, jails.MethodAny)) {
			return true
		}
	}
	return false
}
