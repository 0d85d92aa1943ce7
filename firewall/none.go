package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// None is the backend of `firewall = "none"`: it touches no firewall and logs nothing itself (the
// daemon logs every ban), but keeps the same mirror as NFTables, so that Ban, Unban and Elements behave
// alike: overlaps are resolved the same way and Unban of an unknown prefix is ErrNotBanned.
type None struct {
	mu      sync.Mutex
	now     func() time.Time
	mirrors map[string]*mirror
}

// NewNone returns the none backend.
func NewNone() *None { return &None{now: time.Now, mirrors: make(map[string]*mirror)} }

// Setup records the jails; the bans of jails that remain are kept.
func (b *None) Setup(jails []JailRules) error {
	mirrors := make(map[string]*mirror, len(jails))
	for _, j := range jails {
		if _, err := j.validate(); err != nil {
			return fmt.Errorf("none: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, j := range jails {
		if m, ok := b.mirrors[j.Name]; ok {
			mirrors[j.Name] = m
		} else {
			mirrors[j.Name] = newMirror()
		}
	}
	b.mirrors = mirrors
	return nil
}

// Ban records a ban of p in jail.
func (b *None) Ban(jail string, p netip.Prefix, timeout time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, err := banIn(b.mirrors, "none", jail, p, timeout, b.now())
	if m != nil {
		m.committed()
	}
	return err
}

// Unban forgets a ban of p in jail, or returns ErrNotBanned.
func (b *None) Unban(jail string, p netip.Prefix) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, err := unbanIn(b.mirrors, "none", jail, p, b.now())
	if m != nil {
		m.committed()
	}
	return err
}

// Flush does nothing: there is no kernel to send to.
func (b *None) Flush() error { return nil }

// Elements returns the live bans recorded for jail.
func (b *None) Elements(jail string) ([]Element, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.mirrors[jail]
	if !ok {
		return nil, fmt.Errorf("none: jail %q: %w", jail, ErrNoSuchJail)
	}
	m.prune(b.now(), 0, -1)
	return m.elements(b.now()), nil
}

// Heal waits for ctx: nothing can damage a firewall that does not exist.
func (b *None) Heal(ctx context.Context, restored func(n int)) { <-ctx.Done() }

// Close does nothing.
func (b *None) Close() error { return nil }

// DeleteTable forgets every ban.
func (b *None) DeleteTable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.mirrors)
	return nil
}
