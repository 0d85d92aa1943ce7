package firewall

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// The message-level tier: NFTables talks to a fake kernel through google/nftables' test dial, so these
// tests run without root and pin down what is sent, message by message. What the kernel does with it
// (that the elements block packets and expire) is proven by the netns tests in nftables_test.go.

// fakeKernel answers netlink requests as an empty ruleset does and records every transaction, each
// message rendered as one line (see render). refuse, when set, makes the kernel refuse the next
// transaction with that errno, as it does when the table vanished behind gaoler's back.
type fakeKernel struct {
	mu     sync.Mutex
	txs    [][]string
	gets   []string
	refuse unix.Errno
}

func (k *fakeKernel) dial(req []netlink.Message) ([]netlink.Message, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(req) == 0 {
		// The caller waits for the acknowledgement of a message of the last transaction.
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4+16)}}, nil
	}
	if req[0].Header.Type != netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) {
		// A query (a set by name, a dump): nothing of gaoler's exists yet.
		k.gets = append(k.gets, render(req[0]))
		return nltest.Error(int(unix.ENOENT), req)
	}
	var tx []string
	for _, m := range req[1 : len(req)-1] {
		tx = append(tx, render(m))
	}
	k.txs = append(k.txs, tx)
	if k.refuse != 0 {
		errno := k.refuse
		k.refuse = 0
		return nltest.Error(int(errno), req[1:])
	}
	return nil, nil
}

// take returns the transactions and queries recorded since the last call.
func (k *fakeKernel) take() (txs [][]string, gets []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	txs, gets = k.txs, k.gets
	k.txs, k.gets = nil, nil
	return txs, gets
}

// render describes an nftables message as a line close to nft's syntax:
//
//	add element sshd_v4 { 192.0.2.7 timeout 1h0m0s }
//	add set sshd_v6_net interval,timeout
func render(m netlink.Message) string {
	verbs := map[uint16]string{
		unix.NFT_MSG_NEWTABLE: "add table", unix.NFT_MSG_DELTABLE: "delete table",
		unix.NFT_MSG_NEWCHAIN: "add chain", unix.NFT_MSG_NEWSET: "add set",
		unix.NFT_MSG_NEWSETELEM: "add element", unix.NFT_MSG_DELSETELEM: "delete element",
		unix.NFT_MSG_NEWRULE:  "add rule",
		unix.NFT_MSG_GETTABLE: "get table", unix.NFT_MSG_GETSET: "get set", unix.NFT_MSG_GETSETELEM: "get element",
		unix.NFT_MSG_GETCHAIN: "get chain", unix.NFT_MSG_GETRULE: "get rule",
	}
	kind := uint16(m.Header.Type) & 0xff
	verb, ok := verbs[kind]
	if !ok {
		return fmt.Sprintf("message %#x", uint16(m.Header.Type))
	}
	if len(m.Data) < 4 {
		return verb
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return verb + " (undecodable)"
	}
	ad.ByteOrder = binary.BigEndian
	var words []string
	switch kind {
	case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_GETTABLE:
		for ad.Next() {
			if ad.Type() == unix.NFTA_TABLE_NAME {
				words = append(words, ad.String())
			}
		}
	case unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_GETCHAIN:
		for ad.Next() {
			if ad.Type() == unix.NFTA_CHAIN_NAME {
				words = append(words, ad.String())
			}
		}
	case unix.NFT_MSG_NEWSET, unix.NFT_MSG_GETSET:
		var name string
		var flags uint32
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_NAME:
				name = ad.String()
			case unix.NFTA_SET_FLAGS:
				flags = ad.Uint32()
			}
		}
		words = append(words, name)
		var fs []string
		for _, f := range []struct {
			bit  uint32
			name string
		}{{unix.NFT_SET_ANONYMOUS, "anonymous"}, {unix.NFT_SET_CONSTANT, "constant"}, {unix.NFT_SET_INTERVAL, "interval"}, {unix.NFT_SET_TIMEOUT, "timeout"}} {
			if flags&f.bit != 0 {
				fs = append(fs, f.name)
			}
		}
		if len(fs) > 0 {
			words = append(words, strings.Join(fs, ","))
		}
	case unix.NFT_MSG_NEWRULE:
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				words = append(words, ad.String())
			case unix.NFTA_RULE_USERDATA:
				if c, ok := userdata.GetString(ad.Bytes(), userdata.TypeComment); ok {
					words = append(words, fmt.Sprintf("%q", c))
				}
			}
		}
	case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM, unix.NFT_MSG_GETSETELEM:
		var elems []string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_ELEM_LIST_SET:
				words = append(words, ad.String())
			case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
				ad.Nested(func(list *netlink.AttributeDecoder) error {
					for list.Next() {
						list.Nested(func(el *netlink.AttributeDecoder) error {
							elems = append(elems, renderElement(el))
							return nil
						})
					}
					return nil
				})
			}
		}
		if len(elems) > 0 {
			words = append(words, "{ "+strings.Join(elems, ", ")+" }")
		}
	}
	return strings.Join(append([]string{verb}, words...), " ")
}

// renderElement describes one set element: its key (an address, or hex for a port or protocol), "end"
// for the end of an interval, and its timeout.
func renderElement(ad *netlink.AttributeDecoder) string {
	ad.ByteOrder = binary.BigEndian
	var key string
	var flags uint32
	var timeout time.Duration
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			ad.Nested(func(d *netlink.AttributeDecoder) error {
				for d.Next() {
					if d.Type() == unix.NFTA_DATA_VALUE {
						b := d.Bytes()
						if a, ok := netip.AddrFromSlice(b); ok {
							key = a.String()
						} else {
							key = fmt.Sprintf("%x", b)
						}
					}
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			flags = ad.Uint32()
		case unix.NFTA_SET_ELEM_TIMEOUT:
			timeout = time.Duration(ad.Uint64()) * time.Millisecond
		}
	}
	if flags&unix.NFT_SET_ELEM_INTERVAL_END != 0 {
		key += " end"
	}
	if timeout != 0 {
		key += " timeout " + timeout.String()
	}
	return key
}

// newFakeNFTables returns an NFTables talking to a fake kernel, with a clock that stands still at t0
// unless the test moves it.
func newFakeNFTables(t *testing.T) (*NFTables, *fakeKernel, *time.Time) {
	t.Helper()
	k := &fakeKernel{}
	now := t0
	n, err := NewNFTables("gaoler", WithClock(func() time.Time { return now }),
		func(o *options) { o.testDial = k.dial })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, k, &now
}

// oneTransaction checks that exactly one transaction was sent since the last take, with no query
// before it, and returns its messages.
func oneTransaction(t *testing.T, k *fakeKernel) []string {
	t.Helper()
	txs, gets := k.take()
	if len(gets) != 0 {
		t.Errorf("queries sent: %q", gets)
	}
	if len(txs) != 1 {
		t.Fatalf("%d transactions sent, want 1: %q", len(txs), txs)
	}
	return txs[0]
}

func checkMessages(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s sent:\n\t%s\nwant:\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestMessagesSetup pins down the table Setup builds on a host without gaoler's table: it asks for the
// four sets (to adopt the bans of a previous gaolerd; there are none), then replaces the table, its
// chain, its sets and its rules in one transaction.
func TestMessagesSetup(t *testing.T) {
	n, k, _ := newFakeNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	txs, gets := k.take()
	checkMessages(t, "queries", gets, []string{
		"get set sshd_v4", "get set sshd_v4_net", "get set sshd_v6", "get set sshd_v6_net",
	})
	if len(txs) != 1 {
		t.Fatalf("%d transactions, want 1: %q", len(txs), txs)
	}
	checkMessages(t, "Setup", txs[0], []string{
		"add table gaoler",
		"delete table gaoler",
		"add table gaoler",
		"add chain input",
		"add set sshd_v4 timeout",
		"add set sshd_v4_net interval,timeout",
		"add set sshd_v6 timeout",
		"add set sshd_v6_net interval,timeout",
		`add rule input "gaoler jail sshd ipv4"`,
		`add rule input "gaoler jail sshd ipv4 prefixes"`,
		`add rule input "gaoler jail sshd ipv6"`,
		`add rule input "gaoler jail sshd ipv6 prefixes"`,
	})
}

// TestMessagesBans pins down what Flush sends: one transaction per Flush, single addresses as plain
// elements of the hash sets, prefixes as start and end elements of the interval sets, each with the
// ban's remaining time as its timeout; an extension deletes and re-adds the element; a prefix leaves
// the addresses inside it their own elements.
func TestMessagesBans(t *testing.T) {
	n, k, now := newFakeNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	k.take()

	mustBan(t, n, "sshd", "192.0.2.7", 10*time.Minute)
	mustBan(t, n, "sshd", "192.0.2.8", time.Hour)
	mustBan(t, n, "sshd", "198.51.100.0/24", time.Hour)
	mustBan(t, n, "sshd", "2001:db8::7", 90*time.Second)
	mustBan(t, n, "sshd", "2001:db8:1::/64", 2*time.Hour)
	mustFlush(t, n)
	checkMessages(t, "first Flush", oneTransaction(t, k), []string{
		"add element sshd_v4 { 192.0.2.7 timeout 10m0s, 192.0.2.8 timeout 1h0m0s }",
		"add element sshd_v4_net { 198.51.100.0 timeout 1h0m0s, 198.51.101.0 end }",
		"add element sshd_v6 { 2001:db8::7 timeout 1m30s }",
		"add element sshd_v6_net { 2001:db8:1:: timeout 2h0m0s, 2001:db8:1:1:: end }",
	})

	// Nothing queued: Flush sends nothing.
	mustFlush(t, n)
	if txs, gets := k.take(); len(txs)+len(gets) != 0 {
		t.Errorf("empty Flush sent %q, asked %q", txs, gets)
	}

	// An extension, a minute later, replaces the element: its timeout is the new remaining time.
	*now = t0.Add(time.Minute)
	mustBan(t, n, "sshd", "192.0.2.7", 3*time.Hour)
	mustBan(t, n, "sshd", "192.0.2.8", 59*time.Minute) // the same deadline: no change
	mustFlush(t, n)
	checkMessages(t, "extension", oneTransaction(t, k), []string{
		"delete element sshd_v4 { 192.0.2.7 }",
		"add element sshd_v4 { 192.0.2.7 timeout 3h0m0s }",
	})

	// A prefix over addresses adds only itself; an address inside a banned prefix has its own element.
	mustBan(t, n, "sshd", "192.0.2.0/24", time.Hour)
	mustBan(t, n, "sshd", "198.51.100.9", 2*time.Hour)
	mustFlush(t, n)
	checkMessages(t, "prefix over addresses", oneTransaction(t, k), []string{
		"add element sshd_v4_net { 192.0.2.0 timeout 1h0m0s, 192.0.3.0 end }",
		"add element sshd_v4 { 198.51.100.9 timeout 2h0m0s }",
	})

	// Unbans: the prefix with its end element, the address alone.
	for _, p := range []string{"192.0.2.0/24", "2001:db8::7"} {
		if err := n.Unban("sshd", pfx(p)); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, n)
	checkMessages(t, "unbans", oneTransaction(t, k), []string{
		"delete element sshd_v4_net { 192.0.2.0, 192.0.3.0 end }",
		"delete element sshd_v6 { 2001:db8::7 }",
	})
}

// TestMessagesLargeFlush checks that a Flush of many bans stays one transaction, cut into messages of
// at most maxElementsPerCall elements (google/nftables' 16-bit attribute length).
func TestMessagesLargeFlush(t *testing.T) {
	n, k, _ := newFakeNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	k.take()
	v4, _ := bulk(2500)
	for _, p := range v4 {
		if err := n.Ban("sshd", p, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, n)
	tx := oneTransaction(t, k)
	var sizes []int
	for _, m := range tx {
		if !strings.HasPrefix(m, "add element sshd_v4 {") {
			t.Fatalf("unexpected message %.80s", m)
		}
		sizes = append(sizes, strings.Count(m, "timeout"))
	}
	if fmt.Sprint(sizes) != "[1000 1000 500]" {
		t.Errorf("elements per message %v, want [1000 1000 500]", sizes)
	}
}

// TestMessagesRefusedFlush: when the kernel refuses a transaction because the table is gone, Flush
// finds it missing and rebuilds it in one transaction with every ban and its remaining time.
func TestMessagesRefusedFlush(t *testing.T) {
	n, k, now := newFakeNFTables(t)
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", time.Hour)
	mustFlush(t, n)
	k.take()

	*now = t0.Add(10 * time.Minute)
	k.refuse = unix.ENOENT
	mustBan(t, n, "sshd", "2001:db8::/64", time.Hour)
	mustFlush(t, n)
	txs, gets := k.take()
	if len(txs) != 2 {
		t.Fatalf("%d transactions, want the refused one and the rebuild: %q", len(txs), txs)
	}
	checkMessages(t, "refused", txs[0], []string{"add element sshd_v6_net { 2001:db8:: timeout 1h0m0s, 2001:db8:0:1:: end }"})
	if len(gets) == 0 || gets[0] != "get table gaoler" {
		t.Errorf("queries after the refusal %q, want the table first", gets)
	}
	rebuild := txs[1]
	if len(rebuild) < 2 || rebuild[0] != "add table gaoler" {
		t.Fatalf("rebuild %q", rebuild)
	}
	checkMessages(t, "rebuild's elements", rebuild[len(rebuild)-2:], []string{
		"add element sshd_v4 { 192.0.2.7 timeout 50m0s }",
		"add element sshd_v6_net { 2001:db8:: timeout 1h0m0s, 2001:db8:0:1:: end }",
	})
	if n.unreported != 2 || !n.rebuilt {
		t.Errorf("rebuild not left for Heal to report: unreported %d, rebuilt %v", n.unreported, n.rebuilt)
	}
}

// TestMessagesHeal: Heal finds the table missing (the fake kernel has none) and rebuilds it in one
// transaction with the bans' remaining times, reporting how many it put back.
func TestMessagesHeal(t *testing.T) {
	n, k, now := newFakeNFTables(t)
	n.opts.every = time.Millisecond
	if err := n.Setup([]JailRules{sshd}); err != nil {
		t.Fatal(err)
	}
	mustBan(t, n, "sshd", "192.0.2.7", time.Hour)
	mustBan(t, n, "sshd", "2001:db8::/64", time.Hour)
	mustFlush(t, n)
	k.take()
	*now = t0.Add(time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	restored := -1
	n.Heal(ctx, func(c int) { restored = c; cancel() })
	if restored != 2 {
		t.Fatalf("restored(%d), want 2", restored)
	}
	txs, gets := k.take()
	if len(gets) < 2 || gets[len(gets)-1] != "get table gaoler" {
		t.Errorf("queries %q: want the walk, then the table asked for again before the rebuild", gets)
	}
	if len(txs) != 1 {
		t.Fatalf("%d transactions, want the rebuild: %q", len(txs), txs)
	}
	checkMessages(t, "rebuild's elements", txs[0][len(txs[0])-2:], []string{
		"add element sshd_v4 { 192.0.2.7 timeout 59m0s }",
		"add element sshd_v6_net { 2001:db8:: timeout 59m0s, 2001:db8:0:1:: end }",
	})
}
