package jails

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gaoler/gaoler/events"
)

// Errors of the Engine's methods, for callers to branch on with errors.Is.
var (
	ErrNoSuchJail      = errors.New("no such jail")
	ErrNotBanned       = errors.New("not banned")
	ErrInvalidAddress  = errors.New("invalid address")
	ErrIgnored         = errors.New("address is ignored by the jail (ignoreip/ignoreself)")
	errSelfAddrsFailed = errors.New("reading the host's addresses")
)

// Firewall is where bans go. The daemon's nftables or none backend implements it; calls are queued
// there and sent to the kernel when the daemon flushes.
type Firewall interface {
	// Ban blocks p for the jail until timeout from now; banning a banned prefix replaces its timeout.
	Ban(jail string, p netip.Prefix, timeout time.Duration) error
	// Unban lifts the jail's ban of p.
	Unban(jail string, p netip.Prefix) error
}

// Events hears about the engine's decisions (the daemon logs them to the journal and signals them on
// the bus). It is called on the engine's goroutine, synchronously.
type Events interface {
	// Banned is a new ban: not a ban re-installed by Restore, nor one decided from a backlog that had
	// already ended.
	Banned(b Ban)
	// Unbanned is a ban lifted: reason is "manual", "peer", "expired", "jail removed" or "unban-all";
	// by is who lifted it (the zero Origin, OriginFilter, for what the engine itself retires).
	Unbanned(b Ban, reason string, by events.Origin)
	// Failed is a failure that was counted or would have been (its address is not ignored).
	Failed(jail string, addr netip.Addr, at time.Time, rule string)
}

// Ban is one ban of a prefix in a jail.
type Ban struct {
	Jail     string
	Prefix   netip.Prefix // /32, /128, or /ipv6_prefix
	BannedAt time.Time
	Expires  time.Time
	Count    int           // bans of this prefix so far, this one included (over all jails with increment.overalljails)
	Origin   events.Origin `json:",omitzero"`  // who decided it; the zero Origin is the jail's own (OriginFilter)
	Rule     string        `json:",omitempty"` // the filter rule of the failure that made the ban ("" for other origins)
	// Entries are the journal entries behind a ban the jail decided, oldest first, at most maxretry:
	// the failures its window kept, then the banning entry. A window keeps a failure's time and PID
	// only (see window), so the earlier entries come without Message and Cursor, and the banning
	// entry without a Cursor unless the reader gave it one.
	//
	// In the Ban values the engine hands out, the leading entries that have only a time and a PID
	// are kept compactly (bare) and Entries holds the rest: read them all with AllEntries. A State
	// (and state.json) has them all in Entries. The slice is the engine's own, shared by the Ban
	// values it hands out: never modify it; CompleteEntries replaces it.
	Entries []events.Entry `json:",omitempty"`
	// bare are the entries before Entries, as the window kept them: 16 bytes each instead of an
	// events.Entry's 64, which made most of a flood's memory (200,000 bans, 5 entries each).
	bare []bareEntry
}

// bareEntry is a journal entry known by its time and its sender's PID only (see window).
type bareEntry struct {
	at  int64 // unix nanoseconds
	pid int32
}

func (e bareEntry) entry() events.Entry {
	return events.Entry{Time: time.Unix(0, e.at), PID: int(e.pid)}
}

// AllEntries returns the journal entries behind the ban, oldest first (see Entries): Entries itself
// when none is kept compactly, else a new slice.
func (b Ban) AllEntries() []events.Entry {
	if len(b.bare) == 0 {
		return b.Entries
	}
	out := make([]events.Entry, 0, len(b.bare)+len(b.Entries))
	for _, e := range b.bare {
		out = append(out, e.entry())
	}
	return append(out, b.Entries...)
}

// full returns b with all its entries in Entries, as a State holds it.
func (b Ban) full() Ban {
	b.Entries, b.bare = b.AllEntries(), nil
	return b
}

// compactEntries splits entries (oldest first) into the leading ones that have only a time and a
// PID, kept compactly, and a copy of the rest (entries may be a buffer). AllEntries gives the compact
// ones back as window.within makes them: the same instants, in the local zone.
func compactEntries(entries []events.Entry) (bare []bareEntry, rest []events.Entry) {
	n := 0
	for n < len(entries) && entries[n].Message == "" && entries[n].Cursor == "" &&
		entries[n].PID == int(int32(entries[n].PID)) {
		n++
	}
	if n > 0 {
		bare = make([]bareEntry, n)
		for i, e := range entries[:n] {
			bare[i] = bareEntry{at: e.Time.UnixNano(), pid: int32(e.PID)}
		}
	}
	if n < len(entries) {
		rest = slices.Clone(entries[n:])
	}
	return bare, rest
}

// Stats are a jail's counters, as `gaoler status` shows them.
type Stats struct {
	CurrentlyFailed, CurrentlyBanned int
	TotalFailed, TotalBanned         uint64
}

// Option configures an Engine.
type Option func(*Engine)

// WithSelfAddrs replaces how the engine learns the host's own addresses for ignoreself (by default
// net.InterfaceAddrs, read each time SetJail configures a jail that ignores them).
func WithSelfAddrs(fn func() ([]netip.Prefix, error)) Option {
	return func(e *Engine) { e.selfAddrs = fn }
}

// LoginFunc hears of a successful login the filter of a jail recognised (Result.Kind == Login: the
// sshd filter's "Accepted ..." lines), with the entry that reported it. Only entries that passed the
// jail's journal match reach the engine, so for the sshd filter a login comes from sshd itself. It is
// called on the engine's goroutine, synchronously, from Handle.
type LoginFunc func(jail string, r Result, entry events.Entry)

// WithLogins makes Handle call fn for every login (see LoginFunc); without it logins are dropped.
func WithLogins(fn LoginFunc) Option {
	return func(e *Engine) { e.logins = fn }
}

// Engine counts failures and decides bans for a set of jails. It is not safe for concurrent use: the
// daemon calls it holding its mutex.
type Engine struct {
	fw        Firewall
	ev        Events
	now       func() time.Time
	selfAddrs func() ([]netip.Prefix, error)
	self      []netip.Prefix
	notice    func(jail, msg string)
	logins    LoginFunc // nil: logins are not reported

	jails map[string]*jail
	// history is jail -> prefix -> bans: one map per jail (kept after the jail is removed, for
	// increments over all jails) with records as values, so that tens of thousands of banned
	// addresses cost one map entry each and nothing for the garbage collector to chase.
	history map[string]*ledgered[record]
	histMin time.Time // a lower bound of every record's Last (zero: unknown)
	trustEv TrustEvents
}

// record is the ban history of a prefix in a jail: 16 bytes, since a flood leaves one per offender
// (in a map and in its ledger's base) for HistoryRetention.
type record struct {
	last  int64 // unix nanoseconds of the latest ban's expiry; 0: none
	count int32
}

// Count is how often the prefix was banned.
func (r record) Count() int { return int(r.count) }

// Last is the expiry of the latest ban.
func (r record) Last() time.Time {
	if r.last == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.last)
}

// newRecord returns the record of count bans, the latest ending at last.
func newRecord(count int, last time.Time) record {
	r := record{count: int32(min(max(count, 0), math.MaxInt32))}
	if !last.IsZero() {
		r.last = last.UnixNano()
	}
	return r
}

// jail is one jail's state.
type jail struct {
	name     string
	filter   *Filter
	tracker  *Tracker // the filter's per-connection rules
	s        Settings
	ignore   []netip.Prefix // ignoreip and, with ignoreself, self (see ignore.go)
	self     []netip.Prefix
	narrow   map[netip.Prefix]netip.Prefix // IPv6 /ipv6_prefix -> an ignored prefix inside it
	noted    map[netip.Prefix]bool         // the narrow prefixes already told to the notice
	windows  *windows
	prior    []events.Entry // Handle's buffer: the failures before the one it handles
	nets     *windows       // per IPv6 /64: its distinct addresses' first failures (Settings.IPv6SubnetLimit)
	bans     ledgered[*Ban] // active: installed in the firewall
	past     ledgered[*Ban] // decided from a backlog, already over by now(): not installed
	ended    endedBans      // the latest bans that expired or were lifted, for `gaoler why` (ended.go)
	wide     int            // bans (active or past) that isWide
	forgiven map[netip.Prefix]time.Time
	trusted  map[netip.Addr]*Trust // trust after login (trust.go)
	trustMin time.Time             // a lower bound of every trust's Until (zero: none or unknown)
	lastAt   time.Time             // newest entry seen
	// bansMin and pastMin are lower bounds of the Expires of bans and past (zero: unknown), so
	// that Expire walks them only when one of them may be over.
	bansMin, pastMin time.Time
	failed           uint64
	banned           uint64
	byRule           map[string]uint64 // failures counted, by the rule that matched
}

// NewEngine returns an engine that bans through fw, reports to ev and reads the time from now (the
// entry timestamps decide windows; now decides whether a ban is still running).
func NewEngine(fw Firewall, ev Events, now func() time.Time, opts ...Option) *Engine {
	e := &Engine{
		fw: fw, ev: ev, now: now,
		selfAddrs: interfaceAddrs,
		jails:     make(map[string]*jail),
		history:   make(map[string]*ledgered[record]),
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// interfaceAddrs returns the host's addresses as host prefixes.
func interfaceAddrs() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(n.IP); ok {
			ip = ip.Unmap()
			ps = append(ps, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return ps, nil
}

// SetJail adds a jail, or changes one in place: its failure windows, bans and history stay. With
// IgnoreSelf, the host's addresses are read now. An error reading them is returned, and the jail is
// set anyway (without them).
func (e *Engine) SetJail(name string, f *Filter, s Settings) error {
	j := e.jails[name]
	if j == nil {
		j = &jail{
			name:     name,
			windows:  newWindows(s.keep()),
			nets:     newWindows(s.IPv6SubnetLimit),
			forgiven: make(map[netip.Prefix]time.Time),
			trusted:  make(map[netip.Addr]*Trust),
		}
		e.jails[name] = j
	}
	j.filter, j.s = f, s
	j.tracker = j.tracker.withFilter(f)
	j.windows.setKeep(s.keep())
	j.nets.setKeep(s.IPv6SubnetLimit)
	e.retrust(j)
	var err error
	var self []netip.Prefix
	if s.IgnoreSelf {
		var serr error
		if self, serr = e.selfAddrs(); serr != nil {
			err = fmt.Errorf("jail %q: %w: %v", name, errSelfAddrsFailed, serr)
		}
	}
	j.setIgnore(s.IgnoreIP, self)
	j.windows.trim(j.s.maxTracked())
	j.nets.trim(j.s.maxTracked())
	if s.IPv6SubnetLimit <= 0 {
		j.nets.trim(0)
	}
	return err
}

// RemoveJail drops a jail: its active bans are reported Unbanned("jail removed") but not sent to the
// Firewall, whose Setup drops the jail's sets. Its ban history stays, for increments.
func (e *Engine) RemoveJail(name string) {
	j := e.jails[name]
	if j == nil {
		return
	}
	for _, b := range sortedBans(&j.bans) {
		e.ev.Unbanned(b, "jail removed", events.Origin{})
	}
	delete(e.jails, name)
}

// Handle runs one journal entry of a jail through its filter (with the per-connection rules of a
// Tracker: the entry's PID is its sshd connection) and window: it reports whether the message is a
// failure (a filter matched, the line is not a Repeat of an attempt already counted, the address is
// not ignored). A failure from an address the
// jail has banned at the entry's time, or that an admin forgave after the entry's time, is reported but
// not counted, as is one from an address the jail trusts after a login (trust.go). The failure that
// reaches maxretry within findtime bans. A login (Result.Kind == Login) is no failure: it earns its
// address the jail's trust (Engine.Login), then goes to the engine's LoginFunc (WithLogins), if any.
func (e *Engine) Handle(jailName string, entry events.Entry) (failure bool) {
	j := e.jails[jailName]
	if j == nil || j.filter == nil {
		return false
	}
	at := entry.Time
	r := j.tracker.Next(entry)
	if r.Kind == Login {
		e.Login(j.name, LoginEvent{Addr: r.Addr, User: r.User, Method: r.Method, At: at})
		if e.logins != nil {
			e.logins(j.name, r, entry)
		}
		return false
	}
	addr, rule := r.Addr, r.Rule
	if r.Kind != Failure || j.ignored(addr) {
		return false
	}
	if at.After(j.lastAt) {
		j.lastAt = at
	}
	j.failed++
	if j.byRule == nil {
		j.byRule = make(map[string]uint64)
	}
	j.byRule[rule]++
	e.ev.Failed(j.name, addr, at, rule)
	if j.bannedAt(addr, at) || j.trustedAt(addr, at) {
		return true
	}
	k := e.keyNoting(j, addr)
	if t, ok := j.forgiven[k]; ok && at.Before(t) {
		return true
	}
	if net, ok := j.s.subnet(addr); ok && j.windows.m.at(k) == nil {
		if p, ok := e.countInSubnet(j, net, addr, at); ok {
			if !p.IsValid() {
				p = k
			}
			j.windows.remove(k)
			e.ban(j, p, at, 0, 0, events.Origin{Kind: events.OriginFilter}, rule, []events.Entry{entry})
			return true
		}
	}
	entries := j.prior[:0] // the failures before this one within findtime, should it ban
	if j.s.MaxRetry > 1 {
		w, _ := j.windows.touch(k)
		j.windows.trim(j.s.maxTracked())
		entries = w.within(entries, at.UnixNano(), int64(j.s.FindTime))
		j.prior = entries
		if j.windows.add(w, at.UnixNano(), int64(j.s.FindTime), int32(entry.PID)) < j.s.MaxRetry {
			return true
		}
	}
	j.windows.remove(k)
	j.prior = banEntries(entries, entry)
	e.ban(j, j.banKey(k, addr, at), at, 0, 0, events.Origin{Kind: events.OriginFilter}, rule, j.prior)
	return true
}

// countInSubnet counts a, a new distinct failing address of the /64 net, at t. Past the jail's
// IPv6SubnetLimit within findtime it returns what to ban: net itself, or, when net holds an address
// the jail ignores or trusts (a /64 ban would lock that address out), the failing address alone (the
// caller's key), which the zero Prefix and true stand for. Admin-forgiven failures do not count.
func (e *Engine) countInSubnet(j *jail, net netip.Prefix, a netip.Addr, t time.Time) (netip.Prefix, bool) {
	if f, ok := j.forgiven[net]; ok && t.Before(f) {
		return netip.Prefix{}, false
	}
	w, _ := j.nets.touch(net)
	j.nets.trim(j.s.maxTracked())
	if j.nets.add(w, t.UnixNano(), int64(j.s.FindTime), 0) <= j.s.IPv6SubnetLimit {
		return netip.Prefix{}, false
	}
	if j.refuseOverlap(net) != nil || j.banKey(net, a, t) != net {
		// Keep the /64's count full: every further new address of it is banned at once.
		return netip.Prefix{}, true
	}
	j.nets.remove(net)
	return net, true
}

// NearBan reports whether some address (or prefix) of some jail may be one failure from its ban (a
// window holding maxretry-1 failures, or a /64 at its ipv6_subnet_limit), and always whether some
// jail bans at every failure (maxretry 1). It may say near for a window whose oldest failure has left
// findtime since (until the next failure or Expire looks at it), never the other way round. The
// journal reader polls fast only while one of them is true.
func (e *Engine) NearBan() (near, always bool) {
	for _, j := range e.jails {
		if j.filter == nil {
			continue
		}
		if j.s.MaxRetry <= 1 {
			return true, true
		}
		near = near || j.windows.full > 0 || j.nets.full > 0
	}
	return near, false
}

// ignored reports whether the jail ignores a.
func (j *jail) ignored(a netip.Addr) bool {
	for _, p := range j.ignore {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// bannedAt reports whether a is inside a ban of the jail that has not ended at t (a failure read late,
// with a timestamp before the ban, does not start a new window either).
func (j *jail) bannedAt(a netip.Addr, t time.Time) bool {
	if b := j.covering(a); b != nil && t.Before(b.Expires) {
		return true
	}
	return false
}

// covering returns the active or past ban that contains a, or nil.
func (j *jail) covering(a netip.Addr) *Ban {
	host := netip.PrefixFrom(a, a.BitLen())
	if b := j.bans.at(host); b != nil {
		return b
	}
	if b := j.past.at(host); b != nil {
		return b
	}
	if a.Is6() {
		// The jail's own prefix for IPv6 offenders, and the /64 that IPv6SubnetLimit bans.
		k := j.s.key(a)
		n, _ := a.Prefix(64)
		for _, p := range [2]netip.Prefix{k, n} {
			if b := j.bans.at(p); b != nil {
				return b
			}
			if b := j.past.at(p); b != nil {
				return b
			}
		}
	}
	if j.wide == 0 {
		return nil
	}
	for p, b := range j.bans.all() {
		if p.Bits() < a.BitLen() && p.Contains(a) {
			return b
		}
	}
	for p, b := range j.past.all() {
		if p.Bits() < a.BitLen() && p.Contains(a) {
			return b
		}
	}
	return nil
}

// previous returns how many times p was banned before, in jail j or in all jails.
func (e *Engine) previous(j *jail, p netip.Prefix) int {
	if !j.s.Increment.OverallJails {
		if recs := e.history[j.name]; recs != nil {
			return recs.at(p).Count()
		}
		return 0
	}
	n := 0
	for _, recs := range e.history {
		n += recs.at(p).Count()
	}
	return n
}

// ban bans p in j from at, for d (0: the jail's ban time with increments). count numbers the ban (0:
// this host's history does). A ban already over by now() is recorded (history, totals) but neither
// installed nor announced.
func (e *Engine) ban(j *jail, p netip.Prefix, at time.Time, d time.Duration, count int, o events.Origin, rule string, entries []events.Entry) (Ban, error) {
	// The entries' strings are usually slices of a whole journal batch's text: a ban that kept them
	// would keep the batch alive (a flood of 200,000 bans would keep every batch it was read from).
	for i := range entries {
		entries[i].Message = strings.Clone(entries[i].Message)
		entries[i].Cursor = strings.Clone(entries[i].Cursor)
	}
	prev := e.previous(j, p)
	if d <= 0 {
		d = j.s.banTime(prev)
	}
	if count <= prev {
		count = prev + 1
	}
	b := &Ban{Jail: j.name, Prefix: p, BannedAt: at, Expires: at.Add(d), Count: count,
		Origin: o, Rule: rule}
	b.bare, b.Entries = compactEntries(entries)
	recs := e.history[j.name]
	if recs == nil {
		recs = &ledgered[record]{}
		e.history[j.name] = recs
	}
	r := recs.at(p)
	last := r.Last()
	if b.Expires.After(last) {
		last = b.Expires
	}
	r = newRecord(r.Count()+1, last)
	recs.set(p, r)
	e.histMin = earlier(e.histMin, r.Last())
	j.banned++
	delete(j.forgiven, p)
	left := b.Expires.Sub(e.now())
	if left <= 0 {
		j.setBan(&j.past, b)
		j.pastMin = earlier(j.pastMin, b.Expires)
		return *b, nil
	}
	if old := j.setBan(&j.bans, b); old != nil {
		// A new ban of a banned prefix (an admin's longer one, a peer's) replaces it: the ban it
		// replaces, with the entries that made it, is among the ended bans `gaoler why` shows.
		j.ended.add(EndedBan{Ban: *old, Ended: at, Reason: "replaced"})
	}
	j.bansMin = earlier(j.bansMin, b.Expires)
	err := e.fw.Ban(j.name, p, left)
	e.ev.Banned(*b)
	return *b, err
}

// setBan stores b in m (j.bans or j.past), keeping the count of wide prefixes, and returns the ban of
// the same prefix it replaced, or nil.
func (j *jail) setBan(m *ledgered[*Ban], b *Ban) (old *Ban) {
	if old = m.at(b.Prefix); old == nil && isWide(b.Prefix) {
		j.wide++
	}
	m.set(b.Prefix, b)
	return old
}

// dropBan deletes p from m, keeping the count of wide prefixes.
func (j *jail) dropBan(m *ledgered[*Ban], p netip.Prefix) {
	if _, ok := m.get(p); ok && p.Bits() < p.Addr().BitLen() {
		j.wide--
	}
	m.del(p)
}

// isWide reports whether covering must search for p among all bans: a prefix wider than a host that
// is not an IPv6 /64 (covering looks those up directly).
func isWide(p netip.Prefix) bool {
	return p.Bits() < p.Addr().BitLen() && !(p.Addr().Is6() && p.Bits() == 64)
}

// target finds the jail of a manual ban or unban and parses its address (see parseTarget).
func (e *Engine) target(jailName, addr string) (*jail, netip.Prefix, netip.Addr, error) {
	j := e.jails[jailName]
	if j == nil {
		return nil, netip.Prefix{}, netip.Addr{}, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	p, a, err := j.parseTarget(addr)
	return j, p, a, err
}

// parseTarget parses a manual ban's address: an address (counted by the jail's ipv6_prefix, unless
// that prefix holds an ignored address) or a CIDR, canonical: an IPv4-mapped address or prefix is its
// IPv4 one. A CIDR with host bits set (127.0.0.0/7) is a Refusal naming what was probably meant.
func (j *jail) parseTarget(s string) (netip.Prefix, netip.Addr, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%w %q", ErrInvalidAddress, s)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%w %q", ErrInvalidAddress, s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if err := hostBits(s, p); err != nil {
			return netip.Prefix{}, netip.Addr{}, err
		}
		return p, p.Addr(), nil
	}
	a, ok := parseAddr(s)
	if !ok {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%w %q", ErrInvalidAddress, s)
	}
	k, _ := j.key(a)
	return k, a, nil
}

// Ban bans addr (an address, or a CIDR) in the jail now, for d (0: the jail's ban time, with
// increments), through the same path as a ban the jail decides: history, firewall, Banned. Banning a
// banned prefix again replaces its ban (a new expiry); an address or CIDR inside a wider running ban of
// the jail (an IPv6 /64, say) that lasts at least as long returns that ban unchanged, and one that
// outlasts it is banned on its own, so that it stays banned when the wider ban ends. The returned Ban's Prefix is what the kernel
// holds. No ban locks the host out: an address the jail ignores, or a CIDR that holds one, is a Refusal
// matching ErrIgnored; a bare IPv6 address whose /ipv6_prefix holds one is banned alone. A manual
// ban overrides the trust after login of the addresses it covers, and ends it (see TrustEvents); a
// ban of any other origin (a fleet peer's) of a trusted address is ErrTrusted.
func (e *Engine) Ban(jailName, addr string, d time.Duration, o events.Origin) (Ban, error) {
	j, p, a, err := e.target(jailName, addr)
	if err != nil {
		return Ban{}, err
	}
	cidr := strings.Contains(addr, "/")
	target := p.Bits()
	if !cidr {
		target = a.BitLen()
	}
	if err := j.refuseOverlap(netip.PrefixFrom(a, target)); err != nil {
		return Ban{}, err
	}
	if !cidr {
		p = e.keyNoting(j, a)
	}
	now := e.now()
	if b := j.covering(a); b != nil && b.Prefix.Bits() < target && !b.Expires.Before(now.Add(e.length(j, p, d))) {
		return *b, nil
	}
	if o.Kind != events.OriginManual && (j.trustedAt(a, now) || j.trustInside(p, a, now)) {
		return Ban{}, fmt.Errorf("%w: %s in jail %s", ErrTrusted, p, jailName)
	}
	j.windows.remove(p)
	b, err := e.ban(j, p, now, d, 0, o, "", nil)
	e.overrideTrust(j, p)
	return b, err
}

// length is how long a ban of p in j for d lasts: d, or with d = 0 the jail's ban time with increments.
func (e *Engine) length(j *jail, p netip.Prefix, d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return j.s.banTime(e.previous(j, p))
}

// ErrOver is returned by BanPrefix for a ban whose end has passed.
var ErrOver = errors.New("ban already over")

// BanPrefix applies a ban decided elsewhere (a fleet peer's) in the jail: p until expires (zero: the
// jail's bantime from now, with increments), numbered count when that is more than this host's history
// counts, through the same path as the jail's own bans (history, firewall, Banned) with origin o. The
// jail's ignore list wins: a prefix that holds an address the jail ignores is a Refusal matching
// ErrIgnored, and the trust after login too: a prefix holding a trusted address is ErrTrusted. A prefix
// inside a wider running ban of the jail that lasts at least as long returns that ban unchanged; an
// expiry already past is ErrOver.
func (e *Engine) BanPrefix(jailName string, p netip.Prefix, expires time.Time, count int, o events.Origin) (Ban, error) {
	j := e.jails[jailName]
	if j == nil {
		return Ban{}, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	if !p.IsValid() || p != p.Masked() {
		return Ban{}, fmt.Errorf("%w %q", ErrInvalidAddress, p)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return Ban{}, fmt.Errorf("%w %q", ErrInvalidAddress, p)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if err := j.refuseOverlap(p); err != nil {
		return Ban{}, err
	}
	now := e.now()
	var d time.Duration // zero: the jail's bantime
	if !expires.IsZero() {
		if d = expires.Sub(now); d <= 0 {
			return Ban{}, fmt.Errorf("%w: %s in jail %s ended at %s", ErrOver, p, jailName, expires.Format(time.RFC3339))
		}
	}
	if b := j.covering(p.Addr()); b != nil && b.Prefix.Bits() < p.Bits() && !b.Expires.Before(now.Add(e.length(j, p, d))) {
		return *b, nil
	}
	if j.trustedAt(p.Addr(), now) || j.trustInside(p, p.Addr(), now) {
		return Ban{}, fmt.Errorf("%w: %s in jail %s", ErrTrusted, p, jailName)
	}
	j.windows.remove(p)
	return e.ban(j, p, now, d, count, o, "", nil)
}

// Unban lifts the jail's ban of addr (the ban whose prefix is addr's, or contains it) through the
// firewall and reports Unbanned("manual", by), or Unbanned("peer", by) when by is a fleet peer. It
// forgives too: failures of the prefix counted so far, or read later with an earlier timestamp, never
// count again; new failures count afresh.
func (e *Engine) Unban(jailName, addr string, by events.Origin) (Ban, error) {
	j, p, a, err := e.target(jailName, addr)
	if err != nil {
		return Ban{}, err
	}
	b := j.bans.at(p)
	if b == nil {
		for q, c := range j.bans.all() {
			if q.Contains(a) && q.Bits() <= p.Bits() {
				b = c
				break
			}
		}
	}
	if b == nil {
		return Ban{}, fmt.Errorf("%w: %s in jail %s", ErrNotBanned, addr, jailName)
	}
	reason := "manual"
	if by.Kind == events.OriginPeer {
		reason = "peer"
	}
	return *b, e.unban(j, b, reason, by)
}

// unban lifts b, forgives its prefix, and reports it.
func (e *Engine) unban(j *jail, b *Ban, reason string, by events.Origin) error {
	j.dropBan(&j.bans, b.Prefix)
	j.windows.remove(b.Prefix)
	j.nets.remove(b.Prefix)
	now := e.now()
	j.forgiven[b.Prefix] = now
	j.ended.add(EndedBan{Ban: *b, Ended: now, Reason: reason})
	err := e.fw.Unban(j.name, b.Prefix)
	e.ev.Unbanned(*b, reason, by)
	return err
}

// UnbanAll lifts every ban of the jail ("" = all jails), as Unban does, with reason "unban-all", and
// returns how many it lifted.
func (e *Engine) UnbanAll(jailName string, by events.Origin) (int, error) {
	var js []*jail
	if jailName == "" {
		js = e.sortedJails()
	} else if j := e.jails[jailName]; j != nil {
		js = []*jail{j}
	} else {
		return 0, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	n := 0
	var errs []error
	for _, j := range js {
		for _, b := range sortedBans(&j.bans) {
			if err := e.unban(j, j.bans.at(b.Prefix), "unban-all", by); err != nil {
				errs = append(errs, err)
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Bans returns the running bans of the jail ("" = all jails), sorted by jail and prefix: a copy,
// which costs the caller its length (see BanList for one that does not).
func (e *Engine) Bans(jailName string) []Ban {
	var out []Ban
	for b := range e.BanList(jailName).All() {
		out = append(out, *b)
	}
	return out
}

// Stats returns the jail's counters. CurrentlyFailed is the number of addresses (or prefixes) with a
// failure within findtime of now().
func (e *Engine) Stats(jailName string) (Stats, error) {
	j := e.jails[jailName]
	if j == nil {
		return Stats{}, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	cutoff := e.now().Add(-j.s.FindTime).UnixNano()
	st := Stats{CurrentlyBanned: j.bans.len(), TotalFailed: j.failed, TotalBanned: j.banned}
	j.windows.each(func(w *window) {
		if w.newest() >= cutoff {
			st.CurrentlyFailed++
		}
	})
	return st, nil
}

// Expire drops the bans whose time is over at now (the kernel has already expired their elements,
// so the Firewall is not called), reports each as Unbanned("expired") and returns them, sorted by
// expiry. It also forgets windows, forgiveness and history too old to matter.
func (e *Engine) Expire(now time.Time) []Ban {
	var out []Ban
	for _, j := range e.sortedJails() {
		e.expireTrust(j, now)
		if j.bans.len() > 0 && !now.Before(j.bansMin) {
			j.bansMin = time.Time{}
			for p, b := range j.bans.all() {
				if !now.Before(b.Expires) {
					out = append(out, *b)
					j.dropBan(&j.bans, p)
				} else {
					j.bansMin = earlier(j.bansMin, b.Expires)
				}
			}
		}
		if j.past.len() > 0 && !j.lastAt.Before(j.pastMin) {
			j.pastMin = time.Time{}
			for p, b := range j.past.all() {
				if !j.lastAt.Before(b.Expires) {
					j.dropBan(&j.past, p)
				} else {
					j.pastMin = earlier(j.pastMin, b.Expires)
				}
			}
		}
		horizon := j.lastAt
		if now.After(horizon) {
			horizon = now
		}
		cutoff := horizon.Add(-j.s.FindTime)
		for p, t := range j.forgiven {
			if t.Before(cutoff) {
				delete(j.forgiven, p)
			}
		}
		for _, ws := range [2]*windows{j.windows, j.nets} {
			for w := ws.stalest(); w != nil && w.newest() < cutoff.UnixNano(); w = ws.stalest() {
				ws.remove(w.key)
			}
		}
	}
	slices.SortFunc(out, func(a, b Ban) int {
		if c := a.Expires.Compare(b.Expires); c != 0 {
			return c
		}
		return cmpBan(&a, &b)
	})
	for _, b := range out {
		e.jails[b.Jail].ended.add(EndedBan{Ban: b, Ended: b.Expires, Reason: "expired"})
		e.ev.Unbanned(b, "expired", events.Origin{})
	}
	if len(e.history) > 0 && now.Sub(e.histMin) > HistoryRetention {
		e.histMin = time.Time{}
		for name, recs := range e.history {
			for p, r := range recs.all() {
				if now.Sub(r.Last()) > HistoryRetention {
					recs.del(p)
				} else {
					e.histMin = earlier(e.histMin, r.Last())
				}
			}
			if recs.len() == 0 {
				delete(e.history, name)
			}
		}
	}
	return out
}

// NextExpiry returns a time at or before which the next running ban ends, so that a caller can sleep
// until then instead of calling Expire on a timer; ok is false when no ban is running.
func (e *Engine) NextExpiry() (t time.Time, ok bool) {
	for _, j := range e.jails {
		if j.bans.len() > 0 {
			t, ok = earlier(t, j.bansMin), true
		}
	}
	return t, ok
}

// earlier returns the earlier of a and b, where a zero a means none yet.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func (e *Engine) sortedJails() []*jail {
	js := make([]*jail, 0, len(e.jails))
	for _, j := range e.jails {
		js = append(js, j)
	}
	sort.Slice(js, func(a, b int) bool { return js[a].name < js[b].name })
	return js
}

func sortedBans(m *ledgered[*Ban]) []Ban {
	return banValues(m.view().items())
}

// banValues copies the bans of a ledger's items.
func banValues(items []ledgerItem[*Ban]) []Ban {
	out := make([]Ban, 0, len(items))
	for _, it := range items {
		out = append(out, *it.v)
	}
	return out
}

// fullBans is banValues with every ban's entries in Entries (Ban.full), as a State holds them.
func fullBans(items []ledgerItem[*Ban]) []Ban {
	out := make([]Ban, 0, len(items))
	for _, it := range items {
		out = append(out, it.v.full())
	}
	return out
}

// CompleteEntries replaces the entries of the running ban of p in jail made at bannedAt with
// entries, all of them, oldest first, as AllEntries gave them and the daemon completed them with the
// messages and cursors it read back from the journal. The ban is replaced, not modified: readers off
// the daemon's lock may hold it. Nothing happens if that ban is no longer running.
func (e *Engine) CompleteEntries(jailName string, p netip.Prefix, bannedAt time.Time, entries []events.Entry) {
	j := e.jails[jailName]
	if j == nil {
		return
	}
	old := j.bans.at(p)
	if old == nil || !old.BannedAt.Equal(bannedAt) || len(entries) != len(old.bare)+len(old.Entries) {
		return
	}
	b := *old
	b.bare, b.Entries = compactEntries(entries)
	j.bans.set(p, &b)
}

// cmpBan orders bans by jail, then address, then prefix length.
func cmpBan(a, b *Ban) int {
	if c := strings.Compare(a.Jail, b.Jail); c != 0 {
		return c
	}
	return cmpPrefix(a.Prefix, b.Prefix)
}

func cmpPrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
