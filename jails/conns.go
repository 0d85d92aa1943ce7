package jails

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/gaoler/gaoler/events"
)

// DefaultMaxConns is how many sshd connections a Tracker follows at most. sshd itself lets at most
// MaxStartups (100 by default) connections be unauthenticated at a time, and a connection's
// authentication ends within LoginGraceTime (2 minutes), so the most recent 4,096 are plenty; past
// the cap the connection heard from least recently is forgotten.
const DefaultMaxConns = 4096

// ConnIdle is how long a Tracker remembers a connection it hears nothing more from. sshd ends an
// unauthenticated connection after LoginGraceTime (2 minutes by default); every rule that looks at
// earlier lines of a connection is about its authentication.
const ConnIdle = 10 * time.Minute

// maxUserBytes is how much of a user name sshd writes in its lines ("%.100s").
const maxUserBytes = 100

// A Tracker reads a filter's messages in journal order and applies the rules that span several
// lines of one sshd connection (see the package documentation, "What counts as one failure"). The
// connection is the sshd process that wrote the line (events.Entry.PID, journald's _PID); when that
// is unknown (PID 0), lines that name the client's address and port are grouped by both, and other
// lines are read alone. For a config-defined filter Next is Classify. A Tracker is not safe for
// concurrent use.
type Tracker struct {
	f *Filter
	c *conns // nil when f has no connections
}

// NewTracker returns a Tracker for f with no connections yet.
func NewTracker(f *Filter) *Tracker {
	t := &Tracker{f: f}
	if f.sshd != nil {
		t.c = newConns(DefaultMaxConns)
	}
	return t
}

// withFilter returns a Tracker for f that keeps t's connections (a reload that changes the sshd
// filter's mode keeps what it knows of the connections under way).
func (t *Tracker) withFilter(f *Filter) *Tracker {
	if t == nil || f.sshd == nil || t.c == nil {
		return NewTracker(f)
	}
	return &Tracker{f: f, c: t.c}
}

// conns returns t's connections (nil for a nil Tracker or one without connections).
func (t *Tracker) conns() *conns {
	if t == nil {
		return nil
	}
	return t.c
}

// Next reads the entry's message in the light of the earlier lines of its connection.
func (t *Tracker) Next(e events.Entry) Result {
	if t.c == nil {
		return t.f.Classify(e.Message)
	}
	l := t.f.sshd.read(e.Message)
	if l.kind == lineNone {
		return Result{}
	}
	return t.c.next(&l, e.PID, e.Time.UnixNano())
}

// connKey names a connection: its sshd process, or with no process id (pid 0) its client's address
// and port.
type connKey struct {
	pid  int
	addr netip.AddrPort
}

// Where a connection's current attempt stands: the lines that report one rejected attempt come in
// pairs (Invalid user, then the Failed line; sshd's PAM error and Failed keyboard-interactive/pam).
const (
	openNone    uint8 = iota
	openRefusal       // the user name was refused: the next Failed (or PAM error) is the same attempt
	openPAM           // sshd's PAM error: the next Failed keyboard-interactive is the same attempt
	openKbd           // Failed keyboard-interactive: the next PAM error is the same attempt
)

// conn is what a Tracker remembers of one connection.
type conn struct {
	key  connKey
	addr netip.Addr // the address sshd wrote for it (invalid: none yet)
	user uint64     // FNV-1a of the first user name it named (0: none)
	last int64      // unix nanoseconds of its latest line
	// pending is the rule of a failure reported before the connection's address (account
	// locked): it counts at the first line that names the address.
	pending     string
	open        uint8
	several     bool // it named more than one user
	counted     bool // a failure was counted on it
	lastCounted bool // its latest rejected attempt was counted (not a valid user's public key)
	maxTries    bool // sshd reported MaxAuthTries for it
	ended       bool // a line reported its end: a line that does not is a new connection's
	final       bool // its last line was written: a second one is a new connection's
	prev, next  *conn
}

// conns is a Tracker's connections: a map for lookup and a list from the most to the least recently
// heard from, for eviction.
type conns struct {
	pids  map[int]*conn            // connections with a process id
	addrs map[netip.AddrPort]*conn // connections without one
	head  conn                     // sentinel
	max   int
}

func newConns(max int) *conns {
	c := &conns{pids: make(map[int]*conn), addrs: make(map[netip.AddrPort]*conn), max: max}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

func (c *conns) len() int { return len(c.pids) + len(c.addrs) }

func (c *conns) lookup(k connKey) *conn {
	if k.pid > 0 {
		return c.pids[k.pid]
	}
	return c.addrs[k.addr]
}

func (c *conns) store(k connKey, x *conn) {
	if k.pid > 0 {
		c.pids[k.pid] = x
	} else {
		c.addrs[k.addr] = x
	}
}

// get returns the connection of k, fresh if it is not known, has been idle longer than ConnIdle at
// now (or now is more than ConnIdle before its latest line: lines out of order, as in a text file
// put together from several logs), or has another address than addr (its process id was reused);
// it moves to the front.
func (c *conns) get(k connKey, addr netip.Addr, now int64) *conn {
	// A connection forgotten here is reused for a new one: on a busy sshd every line of a new
	// process would otherwise allocate one (nothing keeps a pointer to a removed connection).
	var spare *conn
	for s := c.head.prev; s != &c.head && now-s.last > int64(ConnIdle); s = c.head.prev {
		c.remove(s)
		spare = s
	}
	x := c.lookup(k)
	if x != nil && (now-x.last > int64(ConnIdle) || x.last-now > int64(ConnIdle) || addr.IsValid() && x.addr.IsValid() && x.addr != addr) {
		prev, next := x.prev, x.next
		*x = conn{key: k, last: now, prev: prev, next: next} // a new connection in the old one's place
	}
	if x == nil {
		if c.len() >= c.max {
			spare = c.head.prev
			c.remove(spare)
		}
		if x = spare; x == nil {
			x = new(conn)
		}
		*x = conn{key: k, last: now}
		c.store(k, x)
	} else {
		x.prev.next, x.next.prev = x.next, x.prev
	}
	x.prev, x.next = &c.head, c.head.next
	c.head.next.prev = x
	c.head.next = x
	x.last = max(x.last, now)
	return x
}

func (c *conns) remove(x *conn) {
	if x.key.pid > 0 {
		delete(c.pids, x.key.pid)
	} else {
		delete(c.addrs, x.key.addr)
	}
	x.prev.next, x.next.prev = x.next, x.prev
	x.prev, x.next = nil, nil
}

// userHash is FNV-1a of the first maxUserBytes of a user name, never 0.
func userHash(u string) uint64 {
	if len(u) > maxUserBytes {
		u = u[:maxUserBytes]
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(u); i++ {
		h ^= uint64(u[i])
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}

// next applies the per-connection rules to l, a line of process pid at now.
func (c *conns) next(l *sshdLine, pid int, now int64) Result {
	if l.pid > 0 { // the listener's "Timeout ... pid = N" is about connection N
		pid = l.pid
	}
	var k connKey
	if pid > 0 {
		k = connKey{pid: pid}
	} else if port := l.port(); port > 0 && port <= 65535 {
		k = connKey{addr: netip.AddrPortFrom(l.addr, uint16(port))}
	} else {
		return l.alone()
	}
	x := c.get(k, l.addr, now)
	if x.ended && (!l.ends || l.final && x.final) {
		// The connection ended (further lines of its end may follow, but only one last line);
		// this line starts another one with the same process id or, without one, the same
		// address and port.
		*x = conn{key: x.key, last: x.last, prev: x.prev, next: x.next}
	}
	if l.addr.IsValid() && !x.addr.IsValid() {
		x.addr = l.addr
	}
	if l.user != "" {
		if h := userHash(l.user); x.user == 0 {
			x.user = h
		} else if h != x.user {
			x.several = true
		}
	}
	own := x.decide(l)
	x.ended, x.final = x.ended || l.ends, x.final || l.final
	switch {
	case own.Kind == Failure:
		x.pending = ""
		x.counted = true
	case x.pending != "" && x.addr.IsValid():
		own = Result{Kind: Failure, Addr: x.addr, Rule: x.pending}
		x.pending = ""
	}
	return own
}

// decide is what l means on connection x, before a pending failure is added.
func (x *conn) decide(l *sshdLine) Result {
	fail := func(rule string) Result {
		if !x.addr.IsValid() {
			x.pending, x.counted = rule, true
			return Result{}
		}
		return Result{Kind: Failure, Addr: x.addr, Rule: rule}
	}
	repeat := Result{Kind: Repeat, Addr: x.addr, Rule: l.rule}
	switch l.kind {
	case lineInfo:
		return Result{}
	case lineLogin:
		if x.several {
			return fail(RuleSeveralUsers)
		}
		return l.alone()
	case lineRefusal:
		x.open, x.lastCounted = openRefusal, true
		return fail(l.rule)
	case lineFailed:
		kbd := len(l.method) >= len("keyboard-interactive") && l.method[:len("keyboard-interactive")] == "keyboard-interactive"
		x.lastCounted = true
		switch {
		case x.open == openRefusal:
			x.open = openNone
			if kbd {
				x.open = openKbd
			}
			return repeat
		case x.open == openPAM && kbd:
			x.open = openNone
			return repeat
		}
		x.open = openNone
		if kbd {
			x.open = openKbd
		}
		return fail(l.rule)
	case linePAM:
		x.lastCounted = true
		switch x.open {
		case openRefusal:
			x.open = openPAM
			return repeat
		case openKbd:
			x.open = openNone
			return repeat
		}
		x.open = openPAM
		return fail(l.rule)
	case linePubkey:
		x.lastCounted = false
		if x.several {
			return fail(RuleSeveralUsers)
		}
		return Result{}
	case lineMaxTries, lineTooMany:
		seen := x.maxTries
		x.maxTries = true
		if seen || x.lastCounted {
			x.lastCounted = true
			return repeat
		}
		x.lastCounted = true
		return fail(l.rule)
	case lineEnd:
		if x.counted {
			return repeat
		}
		return fail(l.rule)
	}
	// lineFailure
	if l.rule == RuleUserChange {
		x.several = true
	}
	x.lastCounted = true
	return fail(l.rule)
}

// ConnState is one sshd connection a jail's Tracker follows, as the checkpoint keeps it, so that a
// restart neither counts again an attempt it had counted nor forgets one half told. A connection
// with a PID is that sshd process; one without is the client's Addr and Port.
type ConnState struct {
	PID     int        `json:"pid,omitempty"`
	Port    int        `json:"port,omitempty"`
	Addr    netip.Addr `json:"addr"`              // the address sshd wrote for it (empty: none yet)
	User    uint64     `json:"user,omitempty"`    // FNV-1a of the first user name it named
	Last    int64      `json:"last"`              // unix nanoseconds of its latest line
	Pending string     `json:"pending,omitempty"` // a failure that waits for its address
	Flags   int        `json:"flags,omitempty"`   // connFlag* bits
}

// The bits of ConnState.Flags; the two lowest are the connection's open attempt (openNone...).
const (
	connFlagOpen        = 3
	connFlagSeveral     = 1 << 2
	connFlagCounted     = 1 << 3
	connFlagLastCounted = 1 << 4
	connFlagMaxTries    = 1 << 5
	connFlagEnded       = 1 << 6
	connFlagFinal       = 1 << 7
)

// snapshot returns the connections from the least to the most recently heard from (the eviction
// order), or nil.
func (c *conns) snapshot() []ConnState {
	if c == nil || c.len() == 0 {
		return nil
	}
	out := make([]ConnState, 0, c.len())
	for x := c.head.prev; x != &c.head; x = x.prev {
		cs := ConnState{PID: x.key.pid, Port: int(x.key.addr.Port()), Addr: x.addr, User: x.user, Last: x.last,
			Pending: x.pending, Flags: int(x.open) & connFlagOpen}
		for _, f := range []struct {
			on  bool
			bit int
		}{{x.several, connFlagSeveral}, {x.counted, connFlagCounted}, {x.lastCounted, connFlagLastCounted},
			{x.maxTries, connFlagMaxTries}, {x.ended, connFlagEnded}, {x.final, connFlagFinal}} {
			if f.on {
				cs.Flags |= f.bit
			}
		}
		out = append(out, cs)
	}
	return out
}

// restore replaces the connections with cs, listed as snapshot lists them. Entries that cannot be a
// connection (no PID and no address and port) are dropped; past the cap the oldest go.
func (c *conns) restore(cs []ConnState) {
	if c == nil {
		return
	}
	c.pids, c.addrs = make(map[int]*conn), make(map[netip.AddrPort]*conn)
	c.head.next, c.head.prev = &c.head, &c.head
	for _, s := range cs {
		k := connKey{pid: s.PID}
		if s.PID <= 0 {
			if !s.Addr.IsValid() || s.Port <= 0 || s.Port > 65535 {
				continue
			}
			k = connKey{addr: netip.AddrPortFrom(s.Addr, uint16(s.Port))}
		}
		if old := c.lookup(k); old != nil {
			c.remove(old)
		}
		x := &conn{key: k, addr: s.Addr, user: s.User, last: s.Last, pending: s.Pending,
			open: uint8(s.Flags & connFlagOpen), several: s.Flags&connFlagSeveral != 0, counted: s.Flags&connFlagCounted != 0,
			lastCounted: s.Flags&connFlagLastCounted != 0, maxTries: s.Flags&connFlagMaxTries != 0, ended: s.Flags&connFlagEnded != 0,
			final: s.Flags&connFlagFinal != 0}
		c.store(k, x)
		x.prev, x.next = &c.head, c.head.next
		c.head.next.prev = x
		c.head.next = x
		if c.len() > c.max {
			c.remove(c.head.prev)
		}
	}
}

// encodeConns appends cs as encoding/json encodes it.
func encodeConns(o *jsonOut, cs []ConnState) {
	b := append(o.b, '[')
	for i, s := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if s.PID != 0 {
			b = append(b, `"pid":`...)
			b = strconv.AppendInt(b, int64(s.PID), 10)
			b = append(b, ',')
		}
		if s.Port != 0 {
			b = append(b, `"port":`...)
			b = strconv.AppendInt(b, int64(s.Port), 10)
			b = append(b, ',')
		}
		b = append(b, `"addr":"`...)
		if s.Addr.IsValid() {
			b = s.Addr.AppendTo(b)
		}
		b = append(b, '"')
		if s.User != 0 {
			b = append(b, `,"user":`...)
			b = strconv.AppendUint(b, s.User, 10)
		}
		b = append(b, `,"last":`...)
		b = strconv.AppendInt(b, s.Last, 10)
		if s.Pending != "" {
			b = append(b, `,"pending":`...)
			b = AppendJSONString(b, s.Pending)
		}
		if s.Flags != 0 {
			b = append(b, `,"flags":`...)
			b = strconv.AppendInt(b, int64(s.Flags), 10)
		}
		b = append(b, '}')
		o.b = b
		o.spill()
		b = o.b
	}
	o.b = append(b, ']')
}
