package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Hook names a jail may ask for.
const (
	HookInput   = "input"
	HookForward = "forward"
)

var jailName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$`)

// validate checks j and fills in its defaults.
func (j JailRules) validate() (JailRules, error) {
	if !jailName.MatchString(j.Name) {
		return j, fmt.Errorf("jail %q: invalid name for an nftables set", j.Name)
	}
	switch j.Protocol {
	case "", "tcp", "udp":
	default:
		return j, fmt.Errorf("jail %q: protocol %q: want tcp, udp or empty", j.Name, j.Protocol)
	}
	switch j.BlockType {
	case "":
		j.BlockType = "reject"
	case "reject", "drop":
	default:
		return j, fmt.Errorf("jail %q: blocktype %q: want reject or drop", j.Name, j.BlockType)
	}
	for _, r := range j.Ports {
		if r.From > r.To {
			return j, fmt.Errorf("jail %q: port range %d-%d is reversed", j.Name, r.From, r.To)
		}
	}
	if len(j.Hooks) == 0 {
		j.Hooks = []string{HookInput}
	}
	for _, h := range j.Hooks {
		if h != HookInput && h != HookForward {
			return j, fmt.Errorf("jail %q: hook %q: want input or forward", j.Name, h)
		}
	}
	return j, nil
}

// family is one of the two address families a jail has sets for.
type family struct {
	suffix  string // set name suffix of the single addresses; prefixes add netSuffix
	nfproto byte
	keyType nftables.SetDatatype
	offset  uint32 // source address offset in the network header
	length  uint32
}

var families = []family{
	{suffix: "_v4", nfproto: unix.NFPROTO_IPV4, keyType: nftables.TypeIPAddr, offset: 12, length: 4},
	{suffix: "_v6", nfproto: unix.NFPROTO_IPV6, keyType: nftables.TypeIP6Addr, offset: 8, length: 16},
}

// netSuffix ends the name of a jail's interval set of a family: "sshd_v6_net" holds sshd's IPv6
// prefix bans, "sshd_v6" its single IPv6 addresses.
const netSuffix = "_net"

// setKind is one of the two sets a jail has per family: single addresses in a hash set, whose commit
// costs the same at 100,000 elements as at none, and prefixes in an interval set, which the kernel
// keeps as a tree whose commit grows with its size (so it holds only the few prefix bans).
type setKind struct {
	suffix   string
	interval bool
}

var setKinds = []setKind{{suffix: ""}, {suffix: netSuffix, interval: true}}

// isNet reports whether the normalized prefix p is a network (a prefix ban) rather than one address.
func isNet(p netip.Prefix) bool { return p.Bits() < p.Addr().BitLen() }

// setName returns the name of the set of jail that holds p.
func setName(jail string, p netip.Prefix) string {
	name := jail + familyOf(p.Addr().Is6()).suffix
	if isNet(p) {
		name += netSuffix
	}
	return name
}

func familyOf(v6 bool) family {
	if v6 {
		return families[1]
	}
	return families[0]
}

// ruleComment is the comment on a jail's rule; Heal recognises the rules by it.
func ruleComment(jail string, f family, k setKind) string {
	c := "gaoler jail " + jail + " " + map[string]string{"_v4": "ipv4", "_v6": "ipv6"}[f.suffix]
	if k.interval {
		c += " prefixes"
	}
	return c
}

// hooksOf returns the base chains the jails need, input first.
func hooksOf(jails []JailRules) []string {
	var hooks []string
	for _, h := range []string{HookInput, HookForward} {
		for _, j := range jails {
			if slices.Contains(j.Hooks, h) {
				hooks = append(hooks, h)
				break
			}
		}
	}
	return hooks
}

func chainFor(t *nftables.Table, hook string) *nftables.Chain {
	num := nftables.ChainHookInput
	if hook == HookForward {
		num = nftables.ChainHookForward
	}
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     hook,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  num,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &policy,
	}
}

// setFor returns jail's set of kind k for family f. Both kinds have timeouts, so the kernel expires
// every ban by itself.
func setFor(t *nftables.Table, jail string, f family, k setKind) *nftables.Set {
	return &nftables.Set{
		Table:      t,
		Name:       jail + f.suffix + k.suffix,
		KeyType:    f.keyType,
		Interval:   k.interval,
		HasTimeout: true,
	}
}

// addRule queues the rule of jail j for family f and set kind k in chain c, matching the set s:
//
//	meta nfproto ipv4 meta l4proto tcp th dport { 22, 8000-8080 } ip saddr @sshd_v4 counter reject with tcp reset
func addRule(cc *nftables.Conn, c *nftables.Chain, j JailRules, f family, k setKind, s *nftables.Set) error {
	exprs, err := ruleExprs(j, f, s, func(set *nftables.Set, elems []nftables.SetElement) error {
		set.Table = c.Table
		return cc.AddSet(set, elems)
	})
	if err != nil {
		return err
	}
	cc.AddRule(&nftables.Rule{
		Table:    c.Table,
		Chain:    c,
		Exprs:    exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment, ruleComment(j.Name, f, k)),
	})
	return nil
}

// ruleExprs returns the expressions of the rule; addSet queues the anonymous sets they use.
func ruleExprs(j JailRules, f family, s *nftables.Set, addSet func(*nftables.Set, []nftables.SetElement) error) ([]expr.Any, error) {
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.nfproto}},
	}
	switch {
	case j.Protocol != "":
		proto := byte(unix.IPPROTO_TCP)
		if j.Protocol == "udp" {
			proto = unix.IPPROTO_UDP
		}
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	case len(j.Ports) > 0:
		// Ports without a protocol: tcp or udp, whose destination port sits at the same offset.
		protos := &nftables.Set{Anonymous: true, Constant: true, KeyType: nftables.TypeInetProto}
		if err := addSet(protos, []nftables.SetElement{{Key: []byte{unix.IPPROTO_TCP}}, {Key: []byte{unix.IPPROTO_UDP}}}); err != nil {
			return nil, err
		}
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetID: protos.ID, SetName: protos.Name})
	}
	if len(j.Ports) > 0 {
		exprs = append(exprs, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
		switch {
		case len(j.Ports) == 1 && j.Ports[0].From == j.Ports[0].To:
			exprs = append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(j.Ports[0].From)})
		case len(j.Ports) == 1:
			exprs = append(exprs, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: port(j.Ports[0].From), ToData: port(j.Ports[0].To)})
		default:
			ports := &nftables.Set{Anonymous: true, Constant: true, Interval: true, KeyType: nftables.TypeInetService}
			if err := addSet(ports, portElements(j.Ports)); err != nil {
				return nil, err
			}
			exprs = append(exprs, &expr.Lookup{SourceRegister: 1, SetID: ports.ID, SetName: ports.Name})
		}
	}
	exprs = append(exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.offset, Len: f.length},
		&expr.Lookup{SourceRegister: 1, SetID: s.ID, SetName: s.Name},
		&expr.Counter{})
	switch {
	case j.BlockType == "drop":
		exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictDrop})
	case j.Protocol == "tcp":
		exprs = append(exprs, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	default:
		exprs = append(exprs, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	}
	return exprs, nil
}

// describe renders a rule for comparison with the kernel's copy: its comment and expressions, without
// what the kernel assigns or counts (set IDs, anonymous set names, counter values).
func describe(comment string, exprs []expr.Any) string {
	var b strings.Builder
	b.WriteString(comment)
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Counter:
			b.WriteString("|counter")
		case *expr.Lookup:
			name := e.SetName
			if name == "" || strings.HasPrefix(name, "__set") {
				name = "anonymous"
			}
			fmt.Fprintf(&b, "|lookup %d %s %v", e.SourceRegister, name, e.Invert)
		default:
			fmt.Fprintf(&b, "|%T%+v", e, e)
		}
	}
	return b.String()
}

// expectedRules returns the descriptions of the rules that rebuild puts in the chain of hook, in order.
func expectedRules(jails []JailRules, table *nftables.Table, hook string) []string {
	var out []string
	noSet := func(*nftables.Set, []nftables.SetElement) error { return nil }
	for _, j := range jails {
		if slices.Contains(j.Hooks, hook) {
			for _, f := range families {
				for _, k := range setKinds {
					exprs, _ := ruleExprs(j, f, setFor(table, j.Name, f, k), noSet)
					out = append(out, describe(ruleComment(j.Name, f, k), exprs))
				}
			}
		}
	}
	return out
}

func port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// portElements returns the interval elements of an anonymous inet_service set, merging ranges that
// overlap or touch (the kernel refuses overlapping intervals).
func portElements(ranges []PortRange) []nftables.SetElement {
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b PortRange) int { return int(a.From) - int(b.From) })
	var merged []PortRange
	for _, r := range rs {
		if n := len(merged); n > 0 && uint32(r.From) <= uint32(merged[n-1].To)+1 {
			merged[n-1].To = max(merged[n-1].To, r.To)
			continue
		}
		merged = append(merged, r)
	}
	var elems []nftables.SetElement
	for _, r := range merged {
		elems = append(elems, nftables.SetElement{Key: port(r.From)})
		if r.To < 0xffff {
			elems = append(elems, nftables.SetElement{Key: port(r.To + 1), IntervalEnd: true})
		}
	}
	return elems
}
