package doctor

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Ruleset is the part of the kernel's nftables ruleset the checks read, as `nft -j -t list ruleset`
// prints it (terse: without set elements, so it is small however many bans there are).
type Ruleset struct {
	Tables []Table
	Chains []Chain
	Sets   []Set
	Rules  []Rule
}

// Table is an nftables table.
type Table struct{ Family, Name string }

// Chain is an nftables chain; Hook is "" for a regular (non-base) chain.
type Chain struct {
	Family, Table, Name string
	Type, Hook, Policy  string
	Prio                int
}

// Set is an nftables set.
type Set struct{ Family, Table, Name string }

// Rule is an nftables rule with its comment and its counter's figures.
type Rule struct {
	Family, Table, Chain string
	Comment              string
	Packets, Bytes       uint64
}

// ParseRuleset reads the JSON of `nft -j -t list ruleset` (libnftables-json(5)).
func ParseRuleset(data []byte) (*Ruleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading nft's JSON: %w", err)
	}
	rs := &Ruleset{}
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			var err error
			switch kind {
			case "table":
				var t struct{ Family, Name string }
				err = json.Unmarshal(raw, &t)
				rs.Tables = append(rs.Tables, Table{Family: t.Family, Name: t.Name})
			case "chain":
				var c struct {
					Family, Table, Name, Type, Hook, Policy string
					Prio                                    json.RawMessage
				}
				err = json.Unmarshal(raw, &c)
				prio := 0
				if len(c.Prio) > 0 {
					// A number, or (older nft) a name like "filter": count the names as their numbers.
					if json.Unmarshal(c.Prio, &prio) != nil {
						var name string
						json.Unmarshal(c.Prio, &name)
						prio = namedPriority[name]
					}
				}
				rs.Chains = append(rs.Chains, Chain{Family: c.Family, Table: c.Table, Name: c.Name,
					Type: c.Type, Hook: c.Hook, Policy: c.Policy, Prio: prio})
			case "set", "map":
				var s struct{ Family, Table, Name string }
				err = json.Unmarshal(raw, &s)
				rs.Sets = append(rs.Sets, Set{Family: s.Family, Table: s.Table, Name: s.Name})
			case "rule":
				var r struct {
					Family, Table, Chain, Comment string
					Expr                          []map[string]json.RawMessage
				}
				err = json.Unmarshal(raw, &r)
				rule := Rule{Family: r.Family, Table: r.Table, Chain: r.Chain, Comment: r.Comment}
				for _, e := range r.Expr {
					if c, ok := e["counter"]; ok {
						var n struct{ Packets, Bytes uint64 }
						if json.Unmarshal(c, &n) == nil {
							rule.Packets += n.Packets
							rule.Bytes += n.Bytes
						}
					}
				}
				rs.Rules = append(rs.Rules, rule)
			}
			if err != nil {
				return nil, fmt.Errorf("reading nft's JSON: %s: %w", kind, err)
			}
		}
	}
	return rs, nil
}

var namedPriority = map[string]int{"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}

// HasTable reports whether the ruleset has the table.
func (rs *Ruleset) HasTable(family, name string) bool {
	for _, t := range rs.Tables {
		if t.Family == family && t.Name == name {
			return true
		}
	}
	return false
}

// Chain returns the chain, or nil.
func (rs *Ruleset) Chain(family, table, name string) *Chain {
	for i, c := range rs.Chains {
		if c.Family == family && c.Table == table && c.Name == name {
			return &rs.Chains[i]
		}
	}
	return nil
}

// HasSet reports whether the table has the set.
func (rs *Ruleset) HasSet(family, table, name string) bool {
	for _, s := range rs.Sets {
		if s.Family == family && s.Table == table && s.Name == name {
			return true
		}
	}
	return false
}

// JailRules returns the rules of chain that gaolerd made for jail (comment "gaoler jail JAIL ...").
func (rs *Ruleset) JailRules(family, table, chain, jail string) []Rule {
	var out []Rule
	prefix := "gaoler jail " + jail + " "
	for _, r := range rs.Rules {
		if r.Family == family && r.Table == table && r.Chain == chain && strings.HasPrefix(r.Comment, prefix) {
			out = append(out, r)
		}
	}
	return out
}
