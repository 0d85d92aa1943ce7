package firewall

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// ErrNoCounters is returned by the none backend's Counters: it has no rules to count.
var ErrNoCounters = errors.New("no firewall rules to count (firewall = \"none\")")

// Counter is what a jail's rules matched: every packet counted was rejected or dropped.
type Counter struct {
	Packets, Bytes uint64
}

// Counters returns, per jail, the sums of the counters of its rules in every chain of the table (the
// `counter` statement each rule has), read with one rule dump per chain: its cost does not depend on
// how many bans the sets hold.
func (n *NFTables) Counters() (map[string]Counter, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]Counter, len(n.jails))
	for _, j := range n.jails {
		out[j.Name] = Counter{}
	}
	for _, hook := range hooksOf(n.jails) {
		rules, err := n.conn.GetRules(n.table, chainFor(n.table, hook))
		if err != nil {
			return nil, fmt.Errorf("nftables: reading the rules of chain %s: %w", hook, err)
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			jail, ok := jailOfComment(comment)
			if !ok {
				continue
			}
			c := out[jail]
			for _, e := range r.Exprs {
				if ce, ok := e.(*expr.Counter); ok {
					c.Packets += ce.Packets
					c.Bytes += ce.Bytes
				}
			}
			out[jail] = c
		}
	}
	return out, nil
}

// jailOfComment returns the jail a rule's comment names ("gaoler jail sshd ipv4" and "gaoler jail sshd
// ipv4 prefixes" are sshd's; jail names hold no spaces).
func jailOfComment(comment string) (string, bool) {
	rest, ok := strings.CutPrefix(comment, "gaoler jail ")
	if !ok {
		return "", false
	}
	jail, _, ok := strings.Cut(rest, " ")
	if !ok || jail == "" {
		return "", false
	}
	return jail, true
}

// Counters of the none backend: there are no rules, so ErrNoCounters.
func (b *None) Counters() (map[string]Counter, error) { return nil, ErrNoCounters }
