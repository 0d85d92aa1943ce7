package firewall

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Heal watches the table until ctx is done or the backend is closed. Every heal interval (5s by
// default) it asks the kernel for the ruleset's generation and, when it moved since the last check,
// checks with a few netlink dumps that the table, its base chains, the jails' sets and
// their rules are as Setup made them; when something is missing or changed (`nft flush ruleset`, a
// firewall reload, `nft delete set`), it rebuilds the table in one transaction with every ban of the
// mirror and its remaining time, and calls restored with the number of bans put back. restored runs
// on Heal's goroutine. Heal never looks at other tables.
//
// A set emptied with `nft flush set` keeps its structure and is not noticed: it is taken as the
// administrator's will until the next rebuild or Setup.
func (n *NFTables) Heal(ctx context.Context, restored func(n int)) {
	tick := time.NewTicker(n.opts.every)
	defer tick.Stop()
	var check *nftables.Conn // Heal's own socket for the walk; see heal
	defer func() {
		if check != nil {
			_ = check.CloseLasting()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.kick:
		}
		if check == nil {
			c, err := n.newConn()
			if err != nil {
				n.opts.warn(fmt.Errorf("nftables: checking table %s: %w", n.table.Name, err))
				continue
			}
			check = c
		}
		count, rebuilt, stop, err := n.heal(check)
		if err != nil {
			n.opts.warn(err)
			_ = check.CloseLasting() // its unread replies would confuse the next walk
			check = nil
		}
		if stop {
			return
		}
		if rebuilt && restored != nil {
			restored(count)
		}
	}
}

// heal checks the table once and rebuilds it if needed. The walk (four dumps, a few milliseconds
// on a busy host, and due after every ban since each one moves the generation) runs on check, Heal's
// own socket, without n.mu, so that it never holds up a Flush: bans do not wait for it. Only a table
// found damaged is looked at again under n.mu, on the shared socket, before the rebuild, so that a
// Setup or a rebuild running meanwhile is never mistaken for damage.
func (n *NFTables) heal(check *nftables.Conn) (count int, rebuilt, stop bool, err error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return 0, false, true, nil
	}
	count, rebuilt = n.unreported, n.rebuilt
	n.unreported, n.rebuilt = 0, false
	jails, layout := n.jails, n.layout // Setup and DeleteTable replace the slice, never change it in place
	if len(jails) == 0 {
		n.mu.Unlock()
		return count, rebuilt, false, nil // not set up, or deleted on purpose
	}
	// Asked before the walk: a change during the walk moves the generation again, and the next
	// check walks once more.
	gen, genErr := n.gen.generation()
	unchanged := genErr == nil && n.checked && gen == n.checkedGen
	n.mu.Unlock()
	if unchanged {
		return count, rebuilt, false, nil // nothing in the ruleset changed since the table was intact
	}

	broken, err := n.damaged(check, jails)
	if err != nil {
		return count, rebuilt, false, fmt.Errorf("nftables: checking table %s: %w", n.table.Name, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return count, rebuilt, true, nil
	}
	if !broken {
		if layout == n.layout { // else a Setup came in between: the next check walks again
			n.checkedGen, n.checked = gen, genErr == nil
		}
		return count, rebuilt, false, nil
	}
	if broken, err = n.damaged(n.conn, n.jails); err != nil || !broken {
		if err != nil {
			_ = n.redial()
			err = fmt.Errorf("nftables: checking table %s: %w", n.table.Name, err)
		}
		return count, rebuilt, false, err
	}
	n.checked = false
	c, err := n.rebuild()
	if err != nil {
		return count, rebuilt, false, err
	}
	return count + c, true, false, nil
}

// damaged reports whether the table differs from what Setup built for jails, asking the kernel over
// conn: a missing table, base chain or set, a set of another type, or rules that are not the jails'
// (missing, added, reordered or replaced, compared by comment and expressions). err is set only when
// the kernel could not be asked.
func (n *NFTables) damaged(conn *nftables.Conn, jails []JailRules) (bool, error) {
	if _, err := conn.ListTableOfFamily(n.table.Name, n.table.Family); err != nil {
		if isNotFound(err) {
			return true, nil
		}
		return false, err
	}
	sets, err := conn.GetSets(n.table)
	if err != nil {
		return false, err
	}
	have := make(map[string]*nftables.Set, len(sets))
	for _, s := range sets {
		have[s.Name] = s
	}
	for _, j := range jails {
		for _, f := range families {
			for _, k := range setKinds {
				s, ok := have[j.Name+f.suffix+k.suffix]
				if !ok || s.Interval != k.interval || !s.HasTimeout || s.KeyType.Name != f.keyType.Name {
					return true, nil
				}
			}
		}
	}
	all, err := conn.ListChainsOfTableFamily(n.table.Family)
	if err != nil {
		return false, err
	}
	chains := make(map[string]*nftables.Chain)
	for _, c := range all {
		if c.Table.Name == n.table.Name {
			chains[c.Name] = c
		}
	}
	for _, h := range hooksOf(jails) {
		want := chainFor(n.table, h)
		c, ok := chains[h]
		if !ok {
			return true, nil
		}
		if c.Hooknum == nil || *c.Hooknum != *want.Hooknum || c.Type != want.Type {
			return true, nil
		}
		rules, err := conn.GetRules(n.table, c)
		if err != nil {
			return false, err
		}
		var got []string
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			got = append(got, describe(comment, r.Exprs))
		}
		if want := expectedRules(jails, n.table, h); !slices.Equal(got, want) {
			return true, nil
		}
	}
	return false, nil
}
