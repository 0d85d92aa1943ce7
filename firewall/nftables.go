package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// ErrInvalidPrefix is returned by Ban and Unban for a prefix that is not a valid address prefix.
var ErrInvalidPrefix = errors.New("invalid prefix")

const (
	// maxElementsPerCall bounds the elements of one NEWSETELEM/DELSETELEM message. google/nftables
	// v0.3.0 puts all elements given to SetAddElements in one netlink attribute whose length is 16 bits:
	// past about 2,000 elements with timeouts it overflows and the kernel silently gets only part of the
	// list. 1,000 IPv6 elements with timeouts stay under 64 KiB.
	maxElementsPerCall = 1000
	// maxElementsPerTransaction bounds one batch (about 50 bytes an element) so that it fits the
	// socket buffer; a larger Flush is sent as several transactions.
	maxElementsPerTransaction = 400_000
	// socketBuffer is the send and receive buffer of the netlink socket: a batch is one sendmsg, which
	// the kernel refuses with EMSGSIZE when it exceeds the send buffer.
	socketBuffer = 32 << 20
	// prunePerFlush bounds how many expired mirror entries one Flush forgets (see mirror.prune), so
	// that the end of a flood's bans, all expiring at once, never holds up a ban.
	prunePerFlush = 1000
)

// NFTables is the nftables backend: one inet table with four sets per jail (a hash set of single
// addresses and an interval set of prefixes, per address family), driven over
// netlink with google/nftables. See the package documentation for the layout.
//
// NFTables is safe for concurrent use; mu serialises every netlink exchange, so Heal's checks never
// interleave with a Flush on the shared socket.
type NFTables struct {
	table   *nftables.Table
	opts    options
	mu      sync.Mutex
	conn    *nftables.Conn
	jails   []JailRules
	layout  uint64 // counts the changes of jails, so that Heal sees a Setup during its walk
	mirrors map[string]*mirror
	// unreported counts bans put back by a rebuild that Flush did itself; Heal reports them.
	unreported int
	rebuilt    bool
	kick       chan struct{}
	closed     bool
	// gen asks for the ruleset's generation; checkedGen is the one Heal last found the table intact
	// at (valid when checked is true).
	gen        genConn
	checkedGen uint32
	checked    bool
	// observe, set by tests, sees every element message queued: set name, deletion, element count.
	observe func(set string, del bool, elems int)
}

// Option configures NewNFTables.
type Option func(*options)

type options struct {
	netns   int
	every   time.Duration
	now     func() time.Time
	warn    func(error)
	perCall int
	// testDial, set by the message-level tests, replaces both netlink sockets with a fake kernel
	// (google/nftables' WithTestDial).
	testDial nltest.Func
}

// WithNetNSFd makes the backend work in the network namespace that fd refers to instead of the
// caller's (google/nftables' WithNetNSFd); tests use it with a namespace of their own.
func WithNetNSFd(fd int) Option { return func(o *options) { o.netns = fd } }

// WithHealInterval sets how often Heal checks the table (default 5s).
func WithHealInterval(d time.Duration) Option { return func(o *options) { o.every = d } }

// WithClock replaces time.Now, to which ban timeouts and kernel expiries are relative.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithWarn receives the errors that Heal cannot return: a failed check or rebuild, retried later.
func WithWarn(warn func(error)) Option { return func(o *options) { o.warn = warn } }

// NewNFTables returns the backend for the inet table named table. It opens a netlink socket but does
// not touch the kernel's ruleset: Setup builds the table.
func NewNFTables(table string, opts ...Option) (*NFTables, error) {
	if !jailName.MatchString(table) {
		return nil, fmt.Errorf("nftables: invalid table name %q", table)
	}
	o := options{every: 5 * time.Second, now: time.Now, warn: func(error) {}, perCall: maxElementsPerCall}
	for _, opt := range opts {
		opt(&o)
	}
	n := &NFTables{
		table:   &nftables.Table{Name: table, Family: nftables.TableFamilyINet},
		opts:    o,
		mirrors: make(map[string]*mirror),
		kick:    make(chan struct{}, 1),
		gen:     genConn{netns: o.netns, testDial: o.testDial},
	}
	if err := n.dial(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *NFTables) dial() error {
	conn, err := n.newConn()
	if err != nil {
		return err
	}
	n.conn = conn
	return nil
}

// newConn opens a lasting netlink socket into the backend's namespace.
func (n *NFTables) newConn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithNetNSFd(n.opts.netns), nftables.WithSockOptions(bigBuffers)}
	if n.opts.testDial != nil {
		opts = []nftables.ConnOption{nftables.AsLasting(), nftables.WithTestDial(n.opts.testDial)}
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: netlink: %w", err)
	}
	return conn, nil
}

// redial replaces the socket after a failed exchange, whose unread replies would confuse the next.
func (n *NFTables) redial() error {
	_ = n.conn.CloseLasting()
	return n.dial()
}

// bigBuffers raises the socket buffers past net.core.[rw]mem_max with the FORCE variants (we have
// CAP_NET_ADMIN), falling back to the capped ones.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt[0], socketBuffer) != nil {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt[1], socketBuffer); e != nil {
					serr = e
				}
			}
		}
	})
	return errors.Join(err, serr)
}

// Setup builds the table for jails, or replaces it, in one transaction (add, delete and re-create the
// table, so that no moment passes without rules). The bans of jails that remain are kept: those this
// NFTables already knows from its mirror, the others (a first Setup after a restart) read back from
// the kernel with their remaining time. The sets of jails no longer listed are gone with the old table.
func (n *NFTables) Setup(jails []JailRules) error {
	valid := make([]JailRules, 0, len(jails))
	seen := make(map[string]bool)
	for _, j := range jails {
		j, err := j.validate()
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		if seen[j.Name] {
			return fmt.Errorf("nftables: jail %q listed twice", j.Name)
		}
		seen[j.Name] = true
		valid = append(valid, j)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("nftables: closed")
	}
	now := n.opts.now()
	mirrors := make(map[string]*mirror, len(valid))
	for _, j := range valid {
		if m, ok := n.mirrors[j.Name]; ok {
			mirrors[j.Name] = m
			continue
		}
		m := newMirror()
		elems, err := n.kernelElements(j.Name, now)
		if err != nil {
			return err
		}
		m.adopt(elems, now)
		mirrors[j.Name] = m
	}
	n.jails, n.mirrors = valid, mirrors
	n.layout++
	_, err := n.rebuild()
	return err
}

// kernelElements reads the sets of jail; a missing table or set has no elements. It also reads the
// layout of gaoler 0.1, where "<jail>_v4" and "<jail>_v6" were interval sets holding
// addresses and prefixes alike: whatever kind a set of one of those names is, its elements are
// adopted, and the next rebuild moves them to the sets of the current layout.
func (n *NFTables) kernelElements(jail string, now time.Time) ([]Element, error) {
	var out []Element
	for _, f := range families {
		for _, k := range setKinds {
			name := jail + f.suffix + k.suffix
			s, err := n.conn.GetSetByName(n.table, name)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("nftables: set %s: %w", name, err)
			}
			if s.KeyType.Name != f.keyType.Name || (k.interval && !s.Interval) {
				continue // someone else's set of that name; it will be replaced
			}
			elems, err := n.conn.GetSetElements(s)
			if err != nil {
				return nil, fmt.Errorf("nftables: elements of %s: %w", name, err)
			}
			if s.Interval {
				out = append(out, fromKernel(elems, f.suffix == "_v6", now)...)
			} else {
				out = append(out, fromHashSet(elems, f.suffix == "_v6", now)...)
			}
		}
	}
	return out, nil
}

func isNotFound(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, syscall.ENOENT)
}

// rebuild replaces the table with the one n.jails describe, holding every live ban of the mirrors,
// in one transaction. It returns the number of bans installed.
func (n *NFTables) rebuild() (int, error) {
	now := n.opts.now()
	cc := n.conn
	// Adding first makes the delete valid whether or not the table exists.
	cc.AddTable(n.table)
	cc.DelTable(n.table)
	cc.AddTable(n.table)
	chains := make(map[string]*nftables.Chain)
	for _, h := range hooksOf(n.jails) {
		chains[h] = cc.AddChain(chainFor(n.table, h))
	}
	tx := &batch{n: n}
	total := 0
	for _, j := range n.jails {
		sets := make(map[string]*nftables.Set, len(families)*len(setKinds))
		for _, f := range families {
			for _, k := range setKinds {
				s := setFor(n.table, j.Name, f, k)
				if err := cc.AddSet(s, nil); err != nil {
					_ = n.redial() // drop the half-built batch
					return 0, fmt.Errorf("nftables: set %s: %w", s.Name, err)
				}
				sets[s.Name] = s
			}
		}
		for _, h := range j.Hooks {
			for _, f := range families {
				for _, k := range setKinds {
					if err := addRule(cc, chains[h], j, f, k, sets[j.Name+f.suffix+k.suffix]); err != nil {
						_ = n.redial()
						return 0, fmt.Errorf("nftables: rule of jail %q: %w", j.Name, err)
					}
				}
			}
		}
		m := n.mirrors[j.Name]
		elems := m.elements(now)
		for _, e := range elems {
			tx.add(sets[setName(j.Name, e.Prefix)], change{prefix: e.Prefix, timeout: kernelTimeout(e.Expires, now)})
		}
		total += len(elems)
	}
	if err := tx.send(); err != nil {
		_ = n.redial()
		return 0, fmt.Errorf("nftables: building table %s: %w", n.table.Name, err)
	}
	for _, j := range n.jails {
		m := n.mirrors[j.Name]
		m.installed(m.elements(now))
		m.committed()
	}
	return total, nil
}

// setOf returns the set of jail that holds the normalized prefix p: a hash set for one address, an
// interval set for a network.
func (n *NFTables) setOf(jail string, p netip.Prefix) *nftables.Set {
	k := setKinds[0]
	if isNet(p) {
		k = setKinds[1]
	}
	return setFor(n.table, jail, familyOf(p.Addr().Is6()), k)
}

// batch queues element changes on n.conn in messages of at most maxElementsPerCall elements, and
// sends a transaction early when it reaches maxElementsPerTransaction.
type batch struct {
	n        *NFTables
	set      *nftables.Set
	del      bool
	elems    []nftables.SetElement
	inTx     int
	flushErr error
}

func (b *batch) add(s *nftables.Set, c change)    { b.queue(s, false, c) }
func (b *batch) delete(s *nftables.Set, c change) { b.queue(s, true, c) }

func (b *batch) queue(s *nftables.Set, del bool, c change) {
	count := 1
	if s.Interval {
		count = elementCount(c.prefix)
	}
	if b.set == nil || b.set.Name != s.Name || b.del != del || len(b.elems)+count > b.n.opts.perCall {
		b.message()
		if b.inTx+count > maxElementsPerTransaction {
			b.transaction()
		}
	}
	b.set, b.del = s, del
	timeout := c.timeout
	if del {
		timeout = 0
	}
	if s.Interval {
		b.elems = intervalElements(b.elems, c.prefix, timeout)
	} else {
		b.elems = append(b.elems, nftables.SetElement{Key: c.prefix.Addr().AsSlice(), Timeout: timeout})
	}
	b.inTx += count
}

// message turns the queued elements into one netlink message.
func (b *batch) message() {
	if len(b.elems) == 0 {
		return
	}
	if b.n.observe != nil {
		b.n.observe(b.set.Name, b.del, len(b.elems))
	}
	var err error
	if b.del {
		err = b.n.conn.SetDeleteElements(b.set, b.elems)
	} else {
		err = b.n.conn.SetAddElements(b.set, b.elems)
	}
	if err != nil && b.flushErr == nil {
		b.flushErr = err
	}
	b.elems = b.elems[:0]
}

func (b *batch) transaction() {
	if b.flushErr == nil {
		b.flushErr = b.n.conn.Flush()
	}
	b.inTx = 0
}

// send sends what is left; it returns the first error of any transaction.
func (b *batch) send() error {
	b.message()
	if b.flushErr == nil {
		b.flushErr = b.n.conn.Flush()
	}
	return b.flushErr
}

// Ban queues a ban of p in jail's set for timeout (which must be positive). Banning a prefix again
// replaces its timeout; a ban inside a banned prefix stays in force as long as it lasts (see the
// package doc for overlapping prefixes). An IPv4-mapped IPv6 prefix is banned as IPv4.
func (n *NFTables) Ban(jail string, p netip.Prefix, timeout time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := banIn(n.mirrors, "nftables", jail, p, timeout, n.opts.now())
	return err
}

// Unban queues the removal of p from jail's set. It returns ErrNotBanned if p has no element there
// (an address inside a banned prefix has none of its own) or if its element has expired.
func (n *NFTables) Unban(jail string, p netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := unbanIn(n.mirrors, "nftables", jail, p, n.opts.now())
	return err
}

// Flush sends the queued changes in one netlink transaction: deletions first, then additions, at most
// maxElementsPerCall elements a message. If the kernel refuses it, because the table was flushed
// behind our back or an element expired in the meantime, Flush reads the kernel's state, rebuilds the
// table if it is damaged (Heal then reports the restore) and sends the difference once more.
func (n *NFTables) Flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("nftables: closed")
	}
	now := n.opts.now()
	for _, m := range n.mirrors {
		m.prune(now, 10*time.Second, prunePerFlush)
	}
	err := n.send(now)
	if err == nil {
		return nil
	}
	if err := n.redial(); err != nil {
		return err
	}
	if broken, _ := n.damaged(n.conn, n.jails); broken {
		count, rerr := n.rebuild()
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		n.unreported += count
		n.rebuilt = true
		select {
		case n.kick <- struct{}{}:
		default:
		}
		return nil
	}
	for _, j := range n.jails {
		elems, rerr := n.kernelElements(j.Name, now)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		n.mirrors[j.Name].installed(elems)
	}
	if err := n.send(n.opts.now()); err != nil {
		_ = n.redial()
		return fmt.Errorf("nftables: flush: %w", err)
	}
	return nil
}

// send sends the mirrors' pending changes and marks them committed on success.
func (n *NFTables) send(now time.Time) error {
	type jailChanges struct {
		name       string
		dels, adds []change
	}
	var all []jailChanges
	for _, j := range n.jails {
		dels, adds := n.mirrors[j.Name].pending(now)
		if len(dels)+len(adds) > 0 {
			all = append(all, jailChanges{j.Name, dels, adds})
		}
	}
	if len(all) > 0 {
		tx := &batch{n: n}
		for _, jc := range all { // deletions first: a replaced element is deleted, then added
			for _, c := range jc.dels {
				tx.delete(n.setOf(jc.name, c.prefix), c)
			}
		}
		for _, jc := range all {
			for _, c := range jc.adds {
				tx.add(n.setOf(jc.name, c.prefix), c)
			}
		}
		if err := tx.send(); err != nil {
			return err
		}
	}
	for _, m := range n.mirrors {
		m.committed()
	}
	return nil
}

// Elements returns the elements of jail's sets as the kernel holds them, IPv4 first, sorted.
func (n *NFTables) Elements(jail string) ([]Element, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.mirrors[jail]; !ok {
		return nil, fmt.Errorf("nftables: jail %q: %w", jail, ErrNoSuchJail)
	}
	elems, err := n.kernelElements(jail, n.opts.now())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(elems, func(a, b Element) int {
		if prefixLess(a.Prefix, b.Prefix) {
			return -1
		}
		if prefixLess(b.Prefix, a.Prefix) {
			return 1
		}
		return 0
	})
	return elems, nil
}

// Close closes the netlink socket. The table and its bans stay in the kernel, which expires each ban
// on time; the next gaolerd adopts them in Setup. Use DeleteTable to remove them.
func (n *NFTables) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.gen.close()
	return n.conn.CloseLasting()
}

// DeleteTable removes the table, its sets and every ban from the kernel (gaolerd --flush-firewall),
// and forgets the jails: Heal leaves the table alone until the next Setup.
func (n *NFTables) DeleteTable() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("nftables: closed")
	}
	n.conn.AddTable(n.table)
	n.conn.DelTable(n.table)
	if err := n.conn.Flush(); err != nil {
		_ = n.redial()
		return fmt.Errorf("nftables: deleting table %s: %w", n.table.Name, err)
	}
	n.jails = nil
	n.layout++
	clear(n.mirrors)
	return nil
}
