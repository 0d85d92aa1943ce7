package firewall

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotBanned is returned by Unban for a prefix that has no element in the jail's set.
var ErrNotBanned = errors.New("not banned")

// ErrNoSuchJail is returned by Ban, Unban and Elements for a jail that Setup did not install.
var ErrNoSuchJail = errors.New("no such jail")

// Backend is a firewall that holds bans: the nftables backend or the none backend.
//
// Ban and Unban only queue changes; Flush sends them. A Backend is safe for use by several goroutines
// (Heal runs in its own), but the queue has one owner: the goroutine that bans, unbans and flushes.
type Backend interface {
	// Setup builds or replaces the table, sets, chains and rules for jails in one transaction. Elements of
	// jails that remain are kept (a reload loses no ban); the sets of jails no longer listed are dropped.
	Setup(jails []JailRules) error
	// Ban queues a ban of p in jail's set for timeout; banning p again replaces its timeout.
	Ban(jail string, p netip.Prefix, timeout time.Duration) error
	// Unban queues the removal of p from jail's set, or returns ErrNotBanned.
	Unban(jail string, p netip.Prefix) error
	// Flush sends the queued bans and unbans to the kernel in one transaction.
	Flush() error
	// Elements returns the elements of jail's sets as the kernel holds them.
	Elements(jail string) ([]Element, error)
	// Heal watches the table until ctx is done and rebuilds it, with every ban and its remaining time,
	// when something removed or changed it; restored is called with the number of bans put back.
	Heal(ctx context.Context, restored func(n int))
	// Close releases the backend; the table and its bans stay in the kernel.
	Close() error
	// DeleteTable removes the table and all its bans from the kernel.
	DeleteTable() error
}

// JailRules describes what a jail's rule blocks.
type JailRules struct {
	Name      string
	Protocol  string      // "tcp", "udp" or "" (any protocol)
	Ports     []PortRange // destination ports; empty means every port
	BlockType string      // "reject" (default) or "drop"
	Hooks     []string    // "input" (default) and/or "forward"
}

// PortRange is an inclusive range of destination ports; a single port has From == To.
type PortRange struct{ From, To uint16 }

// Element is one ban as a set holds it. Expires is zero for an element without a timeout.
type Element struct {
	Prefix  netip.Prefix
	Expires time.Time
}

var (
	_ Backend = (*NFTables)(nil)
	_ Backend = (*None)(nil)
)
