// Command banloop is the bare reference of the side-by-side benchmark (BenchmarkRivals): the least a
// journal-reading banner can do. It polls sd-journal every millisecond (sd_journal_wait with a 1 ms
// timeout) for new entries with _COMM=sshd, takes the address after the last " from " of each
// "Failed password" message, counts the failures of each address within FINDTIME, and at the
// MAXRETRY-th adds the address to a hash set with a timeout (table inet banloop, sets v4 and v6, as
// gaolerd's sshd_v4/sshd_v6) in one google/nftables transaction, in the network namespace it runs in.
// No trust rule, no state, no ignore list: it is a yardstick, not a banner.
//
// It reads the machine's journal, or the journal files in DIR.
//
//	banloop MAXRETRY FINDTIME BANTIME [DIR]
package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/sdjournal"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func main() {
	if len(os.Args) != 4 && len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: banloop MAXRETRY FINDTIME BANTIME [DIR]")
		os.Exit(2)
	}
	maxretry, err1 := strconv.Atoi(os.Args[1])
	findtime, err2 := time.ParseDuration(os.Args[2])
	bantime, err3 := time.ParseDuration(os.Args[3])
	if err1 != nil || err2 != nil || err3 != nil || maxretry < 1 {
		fmt.Fprintln(os.Stderr, "banloop: bad MAXRETRY, FINDTIME or BANTIME")
		os.Exit(2)
	}
	dir := ""
	if len(os.Args) == 5 {
		dir = os.Args[4]
	}
	if err := run(maxretry, findtime, bantime, dir); err != nil {
		fmt.Fprintln(os.Stderr, "banloop:", err)
		os.Exit(1)
	}
}

func run(maxretry int, findtime, bantime time.Duration, dir string) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	table := conn.AddTable(&nftables.Table{Name: "banloop", Family: nftables.TableFamilyINet})
	v4 := &nftables.Set{Table: table, Name: "v4", KeyType: nftables.TypeIPAddr, HasTimeout: true}
	v6 := &nftables.Set{Table: table, Name: "v6", KeyType: nftables.TypeIP6Addr, HasTimeout: true}
	for _, s := range []*nftables.Set{v4, v6} {
		if err := conn.AddSet(s, nil); err != nil {
			return err
		}
	}
	policy := nftables.ChainPolicyAccept
	chain := conn.AddChain(&nftables.Chain{Name: "input", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	// ip saddr @v4 drop; ip6 saddr @v6 drop
	for _, r := range []struct {
		proto   byte
		off, ln uint32
		set     *nftables.Set
	}{{2, 12, 4, v4}, {10, 8, 16, v6}} {
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: r.off, Len: r.ln},
			&expr.Lookup{SourceRegister: 1, SetName: r.set.Name, SetID: r.set.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if err := conn.Flush(); err != nil {
		return err
	}

	var j *sdjournal.Journal
	if dir != "" {
		j, err = sdjournal.NewJournalFromDir(dir)
	} else {
		j, err = sdjournal.NewJournal()
	}
	if err != nil {
		return err
	}
	defer j.Close()
	if err := j.AddMatch("_COMM=sshd"); err != nil {
		return err
	}
	if err := j.SeekTail(); err != nil {
		return err
	}
	j.Previous()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	failures := map[netip.Addr][]time.Time{}
	fmt.Println("ready")
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := j.Next()
		if err != nil {
			return err
		}
		if n == 0 {
			j.Wait(time.Millisecond)
			continue
		}
		msg, _ := j.GetDataValue("MESSAGE")
		a, ok := failureAddr(msg)
		if !ok {
			continue
		}
		now := time.Now()
		ts := failures[a][:0]
		for _, t := range failures[a] {
			if now.Sub(t) < findtime {
				ts = append(ts, t)
			}
		}
		ts = append(ts, now)
		if len(ts) < maxretry {
			failures[a] = ts
			continue
		}
		delete(failures, a)
		set := v6
		if a.Is4() {
			set = v4
		}
		if err := conn.SetAddElements(set, []nftables.SetElement{{Key: a.AsSlice(), Timeout: bantime}}); err != nil {
			return err
		}
		if err := conn.Flush(); err != nil {
			return err
		}
	}
}

// failureAddr returns the address after the last " from " of an sshd "Failed password" message.
func failureAddr(msg string) (netip.Addr, bool) {
	if !strings.HasPrefix(msg, "Failed password for ") {
		return netip.Addr{}, false
	}
	i := strings.LastIndex(msg, " from ")
	if i < 0 {
		return netip.Addr{}, false
	}
	rest := strings.Fields(msg[i+6:])
	if len(rest) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(rest[0])
	return a.Unmap(), err == nil
}
