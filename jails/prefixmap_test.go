package jails

import (
	"net/netip"
	"slices"
	"testing"
)

func TestPrefixMap(t *testing.T) {
	keys := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("192.0.2.0/24"),         // IPv4 but not a single address
		netip.MustParsePrefix("::ffff:192.0.2.1/128"), // the same 4 bytes, IPv4-mapped: another key
		netip.MustParsePrefix("2001:db8::/64"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("0.0.0.0/32"),
	}
	var m prefixMap[int]
	if _, ok := m.get(keys[0]); ok || m.len() != 0 {
		t.Fatal("zero prefixMap is not empty")
	}
	for i, k := range keys {
		m.set(k, i+1)
	}
	if m.len() != len(keys) {
		t.Fatalf("len = %d, want %d", m.len(), len(keys))
	}
	for i, k := range keys {
		if v, ok := m.get(k); !ok || v != i+1 {
			t.Errorf("get(%s) = %d, %v; want %d", k, v, ok, i+1)
		}
	}
	seen := map[netip.Prefix]int{}
	for p, v := range m.all() {
		seen[p] = v
		m.del(p) // deleting the entry the loop is at is allowed
	}
	for i, k := range keys {
		if seen[k] != i+1 {
			t.Errorf("all() gave %s -> %d, want %d", k, seen[k], i+1)
		}
	}
	if m.len() != 0 || m.at(keys[0]) != 0 {
		t.Errorf("after deleting everything: len %d", m.len())
	}
}

// TestPrefixMapSorted: sorted yields cmpPrefix order, the single IPv4 addresses merged with the
// other prefixes (an IPv4 /24 among them, IPv6 after).
func TestPrefixMapSorted(t *testing.T) {
	var m prefixMap[string]
	for _, s := range []string{"2001:db8::1/128", "192.0.2.7/32", "10.0.0.1/32", "192.0.2.0/24",
		"192.0.2.0/32", "2001:db8::/64", "198.51.100.1/32", "::ffff:10.0.0.1/128"} {
		m.set(netip.MustParsePrefix(s), s)
	}
	want := []string{"10.0.0.1/32", "192.0.2.0/24", "192.0.2.0/32", "192.0.2.7/32", "198.51.100.1/32",
		"::ffff:10.0.0.1/128", "2001:db8::/64", "2001:db8::1/128"}
	var got []string
	for p, v := range m.sorted() {
		if p.String() != v {
			t.Errorf("sorted yielded %s with the value of %s", p, v)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, want) {
		t.Errorf("sorted:\n got %v\nwant %v", got, want)
	}
}
