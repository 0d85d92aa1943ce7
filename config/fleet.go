package config

import (
	"math"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Fleet holds the [fleet] table: sharing bans with other hosts over NATS JetStream. With no
// servers the host is on its own, as without the table.
type Fleet struct {
	Servers     []string // nats:// or tls:// URLs of the cluster's servers; empty: no fleet
	Credentials string   // a NATS .creds file (user JWT and nkey seed), or ""
	TLSCert     string   // client certificate and key for a cluster that asks for them, or ""
	TLSKey      string
	TLSCA       string        // the CA that signed the servers' certificates, or "" for the system's
	Host        string        // this host's name in the fleet: its bucket is gaoler-<Host>
	Jails       []string      // jails whose bans are shared and applied; empty: every jail
	MaxBanTime  time.Duration // a peer's ban is applied for at most this long
	Replicas    int           // copies JetStream keeps of this host's bucket
	PeerRate    int           // bans a second applied from one peer at most (bursts of 10 s of it)
}

// Enabled says whether the host is part of a fleet.
func (f *Fleet) Enabled() bool { return len(f.Servers) > 0 }

// Shares says whether bans of the jail are published and applied.
func (f *Fleet) Shares(jail string) bool {
	if len(f.Jails) == 0 {
		return true
	}
	for _, j := range f.Jails {
		if j == jail {
			return true
		}
	}
	return false
}

// Defaults of the [fleet] keys.
const (
	DefaultFleetMaxBanTime = 7 * 24 * time.Hour
	DefaultFleetPeerRate   = 100
)

var fleetKeys = []string{"servers", "credentials", "tls_cert", "tls_key", "tls_ca", "host", "jails", "max_bantime", "replicas", "peer_rate"}

// hostRE is what a fleet host name may be: it becomes part of a JetStream bucket's name and of
// NATS subjects, where dots separate tokens.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,62}$`)

// defaultFleetHost is the host's name up to its first dot, with anything a bucket name cannot hold
// made a '-'.
func defaultFleetHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	if len(b) == 0 || b[0] == '-' {
		b = append([]byte("h"), b...)
	}
	return string(b)
}

// fleet reads the [fleet] table into f; jailNames are the jails the files define, which [fleet] jails
// must name.
func (c *checker) fleet(t map[string]any, f *Fleet, jailNames map[string]bool) {
	path := []string{"fleet"}
	c.known(t, path, fleetKeys...)
	key := func(k string) []string { return []string{"fleet", k} }
	if v, ok := t["servers"]; ok {
		f.Servers, _ = c.strs(v, key("servers"), func(i int, s string) bool {
			u, err := url.Parse(s)
			if err != nil || u.Host == "" || !(u.Scheme == "nats" || u.Scheme == "tls" || u.Scheme == "ws" || u.Scheme == "wss") {
				c.errorf(key("servers"), i, "bad server %q: write nats://host:port (or tls://, ws://, wss://)", s)
				return false
			}
			if u.User != nil {
				c.errorf(key("servers"), i, "server %q: put no user or password in the URL; use credentials", s)
				return false
			}
			return true
		})
	}
	for _, k := range []struct {
		name string
		dst  *string
	}{{"credentials", &f.Credentials}, {"tls_cert", &f.TLSCert}, {"tls_key", &f.TLSKey}, {"tls_ca", &f.TLSCA}} {
		if v, ok := t[k.name]; ok {
			if s, ok := c.str(v, key(k.name)); ok {
				if s != "" && !strings.HasPrefix(s, "/") {
					c.errorf(key(k.name), -1, "must be an absolute path, not %q", s)
				} else {
					*k.dst = s
				}
			}
		}
	}
	if (f.TLSCert == "") != (f.TLSKey == "") {
		c.errorf(path, -1, "tls_cert and tls_key go together: set both or neither")
	}
	if v, ok := t["host"]; ok {
		if s, ok := c.str(v, key("host")); ok && s != "" {
			if hostRE.MatchString(s) {
				f.Host = s
			} else {
				c.errorf(key("host"), -1, "bad host name %q: use up to 63 letters, digits and '-', starting with a letter or digit", s)
			}
		}
	}
	if v, ok := t["jails"]; ok {
		f.Jails, _ = c.strs(v, key("jails"), func(i int, s string) bool {
			if !jailNames[s] {
				c.errorf(key("jails"), i, "no such jail %q", s)
				return false
			}
			return true
		})
	}
	if v, ok := t["max_bantime"]; ok {
		if d, ok := c.duration(v, key("max_bantime")); ok {
			f.MaxBanTime = d
		}
	}
	if v, ok := t["replicas"]; ok {
		if n, ok := c.integer(v, key("replicas"), 1, 5); ok {
			f.Replicas = n
		}
	}
	if v, ok := t["peer_rate"]; ok {
		if n, ok := c.integer(v, key("peer_rate"), 1, math.MaxInt32); ok {
			f.PeerRate = n
		}
	}
}

// defaultFleet is the [fleet] table as the files leave it unset.
func defaultFleet() Fleet {
	return Fleet{MaxBanTime: DefaultFleetMaxBanTime, PeerRate: DefaultFleetPeerRate}
}

// finishFleet fills in what depends on the rest: the host name and the replica count.
func finishFleet(f *Fleet) {
	if f.Host == "" {
		f.Host = defaultFleetHost()
	}
	if f.Replicas == 0 {
		f.Replicas = min(3, max(1, len(f.Servers)))
	}
}
