package jails

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The trust after login: an address from which someone logged in (a trusted sshd "Accepted ..." entry,
// or a remote session that systemd-logind holds) is not banned by a jail for a while, so that a few
// mistyped passwords from the admin's office, or a colleague behind the same NAT, lock nobody out.

// DefaultTrustAfterLogin is trust_after_login when the config does not set it.
const DefaultTrustAfterLogin = 7 * 24 * time.Hour

// DefaultMaxTrusted is the number of trusted addresses a jail keeps when TrustSettings.MaxTrusted is 0.
// Past it, the trust that ends soonest is dropped (for logins of one jail, the stalest login). A
// trusted address costs about 200 bytes, so a jail's trust is bounded to some 2 MB.
const DefaultMaxTrusted = 10000

// Methods of a Login besides sshd's own ("publickey", "password", "keyboard-interactive", ...).
const (
	// MethodLogind is a remote session systemd-logind reported: logind does not know how the user
	// authenticated, so a session opened with a guessed password looks the same as a key login.
	MethodLogind = "logind"
	// MethodManual is a trust an admin gave with `gaoler trust`.
	MethodManual = "manual"
	// MethodAny in TrustSettings.Methods trusts a login by any method.
	MethodAny = "any"
)

// ErrTrusted is the error of a ban that only an admin may give: the address is trusted after a login.
var ErrTrusted = errors.New("address is trusted after a login")

// ErrNotTrusted is the error of Untrust for an address the jail does not trust.
var ErrNotTrusted = errors.New("not trusted")

// TrustSettings are a jail's trust-after-login knobs (Settings.Trust).
type TrustSettings struct {
	// After is how long a login makes its address trusted; 0 turns logins' trust off (a manual
	// trust still works).
	After time.Duration
	// Methods are the login methods that earn trust ("publickey", "password",
	// "keyboard-interactive", "hostbased", "gssapi-with-mic", MethodLogind, or MethodAny); nil is
	// any method.
	Methods []string
	// OverallJails makes the jail trust logins that other jails saw, and logind sessions of any
	// service; without it, only its own filter's logins and logind sessions of the service its
	// filter is named for ("sshd").
	OverallJails bool
	// MaxTrusted caps the trusted addresses of the jail; 0 is DefaultMaxTrusted.
	MaxTrusted int
}

func (t *TrustSettings) maxTrusted() int {
	if t.MaxTrusted > 0 {
		return t.MaxTrusted
	}
	return DefaultMaxTrusted
}

// allows reports whether a login by method earns trust.
func (t *TrustSettings) allows(method string) bool {
	if t.Methods == nil {
		return true
	}
	method = NormalizeMethod(method)
	for _, m := range t.Methods {
		if m == MethodAny || m == method {
			return true
		}
	}
	return false
}

// NormalizeMethod returns sshd's method name without its submethod ("keyboard-interactive/pam" is
// "keyboard-interactive"), as trust_methods names it.
func NormalizeMethod(m string) string {
	m, _, _ = strings.Cut(m, "/")
	return m
}

// LoginEvent is a successful login: from a jail's filter (a trusted sshd "Accepted ..." entry), or a remote
// session that systemd-logind reported.
type LoginEvent struct {
	Addr   netip.Addr
	User   string
	Method string    // sshd's method ("publickey", "password", "keyboard-interactive/pam", ...), or MethodLogind
	At     time.Time // the entry's timestamp, or the session's start
	// Service is, for a logind session, the PAM service that opened it ("sshd"): jails whose filter
	// has that name take the login. "" for a filter's login.
	Service string
}

// Trust is an address trusted in a jail until Until.
type Trust struct {
	Jail   string
	Addr   netip.Addr
	Until  time.Time
	At     time.Time // the latest login (or manual trust) that gave or extended it
	User   string    // that login's user ("" for a manual trust)
	Method string    // that login's method, MethodLogind, or MethodManual
	Logins int       // logins seen since the trust began
	UID    uint32    // MethodManual: the uid of the admin who gave it
}

// TrustEvents hears about trust given, extended and ended; set it with WithTrustEvents. It is called
// on the engine's goroutine, synchronously, as Events is.
type TrustEvents interface {
	// Trusted is a trust given (extended false) or extended by a repeat login or manual trust.
	Trusted(t Trust, extended bool)
	// Untrusted is a trust ended: reason is "expired", "manual" (gaoler untrust), "banned" (a manual
	// ban overrides it), "config" (trust_after_login or trust_methods changed) or "full" (the jail
	// reached its cap and this was the trust that ended soonest).
	Untrusted(t Trust, reason string)
}

// WithTrustEvents sets who hears about trust (by default nobody).
func WithTrustEvents(ev TrustEvents) Option {
	return func(e *Engine) { e.trustEv = ev }
}

type noTrustEvents struct{}

func (noTrustEvents) Trusted(Trust, bool)     {}
func (noTrustEvents) Untrusted(Trust, string) {}

// trustEvents returns who hears about trust.
func (e *Engine) trustEvents() TrustEvents {
	if e.trustEv == nil {
		return noTrustEvents{}
	}
	return e.trustEv
}

// trustedAt reports whether the jail trusts a at t: a failure from it then is not counted.
func (j *jail) trustedAt(a netip.Addr, t time.Time) bool {
	tr := j.trusted[a]
	return tr != nil && t.Before(tr.Until)
}

// trustInside reports whether the jail trusts, at t, an address inside p other than a itself.
func (j *jail) trustInside(p netip.Prefix, a netip.Addr, t time.Time) bool {
	for b, tr := range j.trusted {
		if b != a && p.Contains(b) && t.Before(tr.Until) {
			return true
		}
	}
	return false
}

// banKey returns what a failure of a is banned by: its key k, or the address alone when k is a wider
// IPv6 prefix holding an address the jail trusts (the trusted neighbour must not be locked out).
func (j *jail) banKey(k netip.Prefix, a netip.Addr, at time.Time) netip.Prefix {
	if k.Bits() < a.BitLen() && len(j.trusted) > 0 && j.trustInside(k, a, at) {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return k
}

// Login records a successful login seen by the jail called jailName ("" for a logind session, which
// goes to the jails whose filter is named for the session's Service). Each jail that takes it, where
// trust_after_login is on and trust_methods allows the login's method, trusts the address until the
// login's time plus its trust_after_login (a repeat login extends the trust) and forgets the address's
// failures so far. An IPv6 login trusts that address only, not its prefix. It returns the trusts given
// or extended.
func (e *Engine) Login(jailName string, l LoginEvent) []Trust {
	if !l.Addr.IsValid() {
		return nil
	}
	l.Addr = l.Addr.WithZone("").Unmap()
	var out []Trust
	now := e.now()
	for _, j := range e.sortedJails() {
		ts := &j.s.Trust
		if ts.After <= 0 || !ts.allows(l.Method) || j.ignored(l.Addr) {
			continue
		}
		mine := j.name == jailName
		if jailName == "" && l.Service != "" && j.filter != nil && j.filter.Name() == l.Service {
			mine = true
		}
		if !mine && !ts.OverallJails {
			continue
		}
		until := l.At.Add(ts.After)
		if !until.After(now) {
			continue // a login from a backlog whose trust is already over
		}
		tr, extended := e.trust(j, l.Addr, until, l.At)
		if tr == nil {
			continue
		}
		tr.User, tr.Method, tr.UID = l.User, l.Method, 0
		if !extended {
			tr.Logins = 0
		}
		tr.Logins++
		out = append(out, *tr)
		e.trustEvents().Trusted(*tr, extended)
	}
	return out
}

// trust makes j trust a until until (never shortening a running trust), as of at; it returns the
// record and whether it was running already, or nil when at is older than the running trust's.
func (e *Engine) trust(j *jail, a netip.Addr, until, at time.Time) (*Trust, bool) {
	tr := j.trusted[a]
	extended := tr != nil
	if tr == nil {
		tr = &Trust{Jail: j.name, Addr: a}
		j.trusted[a] = tr
		e.capTrust(j, a)
	} else if at.Before(tr.At) {
		return nil, true
	}
	if until.After(tr.Until) {
		tr.Until = until
	}
	j.trustMin = earlier(j.trustMin, tr.Until)
	tr.At = at
	// The failures so far are forgiven: the login says whoever failed was the user. A window kept
	// for a whole IPv6 prefix is shared with the neighbours, which the login does not vouch for.
	if k := j.s.key(a); k.Bits() == a.BitLen() {
		j.windows.remove(k)
	}
	return tr, extended
}

// capTrust drops the trust that ends soonest while the jail holds more than its cap (never keep, the
// one being added).
func (e *Engine) capTrust(j *jail, keep netip.Addr) {
	for len(j.trusted) > j.s.Trust.maxTrusted() {
		var victim *Trust
		for a, tr := range j.trusted {
			if a == keep {
				continue
			}
			if victim == nil || tr.Until.Before(victim.Until) || tr.Until.Equal(victim.Until) && tr.Addr.Less(victim.Addr) {
				victim = tr
			}
		}
		if victim == nil {
			return
		}
		delete(j.trusted, victim.Addr)
		e.trustEvents().Untrusted(*victim, "full")
	}
}

// Trust makes the jail trust addr (a single address) now, for d (0: the jail's trust_after_login),
// as `gaoler trust` does: uid is the admin's. Its failures so far are forgotten. A running trust is
// extended, never shortened.
func (e *Engine) Trust(jailName, addr string, d time.Duration, uid uint32) (Trust, error) {
	j := e.jails[jailName]
	if j == nil {
		return Trust{}, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	a, ok := parseAddr(strings.TrimSpace(addr))
	if !ok {
		return Trust{}, fmt.Errorf("%w %q (trust takes one address, not a prefix)", ErrInvalidAddress, addr)
	}
	if d <= 0 {
		d = j.s.Trust.After
	}
	if d <= 0 {
		return Trust{}, fmt.Errorf("jail %s: trust_after_login is off: give how long to trust %s", jailName, a)
	}
	now := e.now()
	tr, extended := e.trust(j, a, now.Add(d), now)
	if tr == nil { // a login stamped later than now (a clock step): keep it, extend its end
		tr = j.trusted[a]
		if u := now.Add(d); u.After(tr.Until) {
			tr.Until = u
		}
	}
	tr.User, tr.Method, tr.UID = "", MethodManual, uid
	if !extended {
		tr.Logins = 0
	}
	e.trustEvents().Trusted(*tr, extended)
	return *tr, nil
}

// Untrust ends the jail's trust of addr, as `gaoler untrust` does: its failures count again from now.
func (e *Engine) Untrust(jailName, addr string) (Trust, error) {
	j := e.jails[jailName]
	if j == nil {
		return Trust{}, fmt.Errorf("%w %q", ErrNoSuchJail, jailName)
	}
	a, ok := parseAddr(strings.TrimSpace(addr))
	if !ok {
		return Trust{}, fmt.Errorf("%w %q", ErrInvalidAddress, addr)
	}
	tr := j.trusted[a]
	if tr == nil || !e.now().Before(tr.Until) {
		return Trust{}, fmt.Errorf("%w: %s in jail %s", ErrNotTrusted, a, jailName)
	}
	delete(j.trusted, a)
	e.trustEvents().Untrusted(*tr, "manual")
	return *tr, nil
}

// Trusted returns the running trusts of the jail ("" = all jails), sorted by jail and address.
func (e *Engine) Trusted(jailName string) []Trust {
	now := e.now()
	var out []Trust
	for _, j := range e.sortedJails() {
		if jailName != "" && j.name != jailName {
			continue
		}
		start := len(out)
		for _, tr := range j.trusted {
			if now.Before(tr.Until) {
				out = append(out, *tr)
			}
		}
		slices.SortFunc(out[start:], func(a, b Trust) int { return a.Addr.Compare(b.Addr) })
	}
	return out
}

// TrustOf returns the jail's running trust of addr, and whether there is one.
func (e *Engine) TrustOf(jailName string, addr netip.Addr) (Trust, bool) {
	j := e.jails[jailName]
	if j == nil {
		return Trust{}, false
	}
	tr := j.trusted[addr.WithZone("").Unmap()]
	if tr == nil || !e.now().Before(tr.Until) {
		return Trust{}, false
	}
	return *tr, true
}

// overrideTrust ends the trust of the addresses inside p, which a manual ban of p overrides; it
// returns them.
func (e *Engine) overrideTrust(j *jail, p netip.Prefix) []Trust {
	var out []Trust
	for a, tr := range j.trusted {
		if p.Contains(a) {
			out = append(out, *tr)
			delete(j.trusted, a)
		}
	}
	slices.SortFunc(out, func(a, b Trust) int { return a.Addr.Compare(b.Addr) })
	for _, tr := range out {
		e.trustEvents().Untrusted(tr, "banned")
	}
	return out
}

// retrust brings the jail's trusts in line with changed settings (SetJail): a login's trust lasts
// trust_after_login from that login, and ends when its method no longer earns trust or trust is off.
// Manual trusts stay as given. The cap applies.
func (e *Engine) retrust(j *jail) {
	ts := &j.s.Trust
	var ended []Trust
	for a, tr := range j.trusted {
		if tr.Method == MethodManual {
			continue
		}
		if ts.After <= 0 || !ts.allows(tr.Method) {
			ended = append(ended, *tr)
			delete(j.trusted, a)
			continue
		}
		tr.Until = tr.At.Add(ts.After)
		j.trustMin = earlier(j.trustMin, tr.Until)
	}
	slices.SortFunc(ended, func(a, b Trust) int { return a.Addr.Compare(b.Addr) })
	for _, tr := range ended {
		e.trustEvents().Untrusted(tr, "config")
	}
	e.capTrust(j, netip.Addr{})
}

// expireTrust drops the trusts over at now and reports them. It walks them only when one may be over
// (trustMin), since Expire runs after every journal batch.
func (e *Engine) expireTrust(j *jail, now time.Time) {
	if len(j.trusted) == 0 || now.Before(j.trustMin) {
		return
	}
	var ended []Trust
	j.trustMin = time.Time{}
	for a, tr := range j.trusted {
		if !now.Before(tr.Until) {
			ended = append(ended, *tr)
			delete(j.trusted, a)
		} else {
			j.trustMin = earlier(j.trustMin, tr.Until)
		}
	}
	slices.SortFunc(ended, func(a, b Trust) int { return a.Addr.Compare(b.Addr) })
	for _, tr := range ended {
		e.trustEvents().Untrusted(tr, "expired")
	}
}

// TrustState is one trusted address in a jail's State.
type TrustState struct {
	Addr   netip.Addr `json:"addr"`
	Until  time.Time  `json:"until"`
	At     time.Time  `json:"at"`
	User   string     `json:"user,omitempty"`
	Method string     `json:"method"`
	Logins int        `json:"logins,omitempty"`
	UID    uint32     `json:"uid,omitempty"`
}

// trustSnapshot returns the jail's trusts for the State, sorted by address.
func (j *jail) trustSnapshot() []TrustState {
	if len(j.trusted) == 0 {
		return nil
	}
	out := make([]TrustState, 0, len(j.trusted))
	for _, tr := range j.trusted {
		out = append(out, TrustState{Addr: tr.Addr, Until: tr.Until, At: tr.At, User: tr.User, Method: tr.Method, Logins: tr.Logins, UID: tr.UID})
	}
	slices.SortFunc(out, func(a, b TrustState) int { return a.Addr.Compare(b.Addr) })
	return out
}

// restoreTrust replaces the jail's trusts with those of a State (invalid addresses skipped; the cap
// applies, announcing nothing).
func (j *jail) restoreTrust(ts []TrustState) {
	j.trusted = make(map[netip.Addr]*Trust, len(ts))
	for _, s := range ts {
		if !s.Addr.IsValid() {
			continue
		}
		a := s.Addr.WithZone("").Unmap()
		j.trusted[a] = &Trust{Jail: j.name, Addr: a, Until: s.Until, At: s.At, User: s.User, Method: s.Method, Logins: s.Logins, UID: s.UID}
	}
	j.trustMin = time.Time{}
	for _, tr := range j.trusted {
		j.trustMin = earlier(j.trustMin, tr.Until)
	}
	for len(j.trusted) > j.s.Trust.maxTrusted() {
		var victim *Trust
		for _, tr := range j.trusted {
			if victim == nil || tr.Until.Before(victim.Until) {
				victim = tr
			}
		}
		delete(j.trusted, victim.Addr)
	}
}

// encodeTrusted appends a jail's trusts as encoding/json encodes []TrustState.
func encodeTrusted(o *jsonOut, ts []TrustState) {
	b := append(o.b, '[')
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"addr":"`...)
		b = t.Addr.AppendTo(b)
		b = append(b, `","until":`...)
		b = AppendJSONTime(b, t.Until)
		b = append(b, `,"at":`...)
		b = AppendJSONTime(b, t.At)
		if t.User != "" {
			b = append(b, `,"user":`...)
			b = AppendJSONString(b, t.User)
		}
		b = append(b, `,"method":`...)
		b = AppendJSONString(b, t.Method)
		if t.Logins != 0 {
			b = append(b, `,"logins":`...)
			b = fmt.Appendf(b, "%d", t.Logins)
		}
		if t.UID != 0 {
			b = append(b, `,"uid":`...)
			b = fmt.Appendf(b, "%d", t.UID)
		}
		b = append(b, '}')
		o.b = b
		o.spill()
		b = o.b
	}
	o.b = append(b, ']')
}
