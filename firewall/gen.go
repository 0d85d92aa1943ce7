package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// The kernel numbers every committed nftables transaction: the ruleset's generation (NFT_MSG_GETGEN,
// as `nft list ruleset` prints it in its header with -d netlink). While it stays the same, nothing in
// any table changed, so Heal asks for it first and walks the table only when it moved. On a quiet
// host a check then costs one tiny netlink round trip instead of four dumps.

var (
	getGenType = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN)
	newGenType = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN)
)

// genConn is a netlink socket for generation queries, apart from the nftables connection so that a
// query never interleaves with a transaction's replies.
type genConn struct {
	netns    int
	testDial nltest.Func
	c        *netlink.Conn
}

// generation returns the ruleset's current generation.
func (g *genConn) generation() (uint32, error) {
	if g.c == nil && g.testDial != nil {
		g.c = nltest.Dial(g.testDial)
	}
	if g.c == nil {
		c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: g.netns})
		if err != nil {
			return 0, fmt.Errorf("nftables: generation: %w", err)
		}
		g.c = c
	}
	// struct nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, res_id 0.
	req := netlink.Message{
		Header: netlink.Header{Type: getGenType, Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := g.c.Execute(req)
	if err != nil {
		g.close()
		return 0, fmt.Errorf("nftables: generation: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != newGenType || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("nftables: generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("nftables: generation: no NFTA_GEN_ID in the kernel's answer")
}

func (g *genConn) close() {
	if g.c != nil {
		g.c.Close()
		g.c = nil
	}
}
