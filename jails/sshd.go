package jails

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The sshd filter's modes.
const (
	ModeNormal     = "normal"
	ModeDDoS       = "ddos"
	ModeAggressive = "aggressive"
)

// The sshd filter's rules, as Match reports them. The comment of each shows the message (after an
// "error: ", "fatal: " or "error: PAM: " prefix and a " [preauth]" suffix are set aside).
const (
	// Normal mode.
	RuleFailed          = "failed"            // Failed <method> for [invalid user ]U from H[ port P[ ssh2[: INFO]]]
	RuleInvalidUser     = "invalid-user"      // Invalid user U from H[ port P] (also "Illegal user")
	RuleNotAllowed      = "not-allowed"       // User U from H not allowed because <AllowUsers/DenyUsers/groups reason>
	RuleRootRefused     = "root-refused"      // ROOT LOGIN REFUSED FROM H[ port P]
	RulePAM             = "pam"               // error: PAM: Authentication failure|error for U from H[ via A]
	RuleMaxAuthTries    = "max-auth-tries"    // error: maximum authentication attempts exceeded for U from H port P ssh2
	RuleTooManyFailures = "too-many-failures" // Disconnecting (authenticating|invalid) user U H port P: Too many authentication failures; Disconnecting: Too many authentication failures[ for U]
	RuleAccountLocked   = "account-locked"    // User U not allowed because account is locked (the connection's address)
	RuleRefusedConnect  = "refused-connect"   // refused connect from NAME (H) (tcp wrappers)
	RuleAuthFail        = "auth-fail"         // Received disconnect from H[ port P]:3: ...: Auth fail (the client gave up)
	RuleUserChange      = "user-change"       // Disconnecting (authenticating|invalid) user U H port P: Change of username or service not allowed: ...
	RuleSeveralUsers    = "several-users"     // a connection that named more than one user: its "Accepted" or valid user's "Failed publickey"
	// ddos mode adds these.
	RuleNoIdent        = "no-identification"  // Did not receive identification string from H[ port P]
	RuleBadVersion     = "bad-version"        // Bad protocol version identification 'V' from H[ port P]
	RuleBanner         = "banner-exchange"    // banner exchange: Connection from H port P: <reason>
	RuleTimeout        = "timeout-preauth"    // Timeout before authentication for H[ port P]; ... for connection from H to H2, pid = N
	RuleDispatchFatal  = "dispatch-fatal"     // ssh_dispatch_run_fatal: Connection from [(authenticating|invalid) user U ]H port P: <reason>
	RuleClosedPreauth  = "closed-preauth"     // Connection (closed|reset) by H[ port P] [preauth]; Disconnected from H port P [preauth]
	RuleClosedAuthUser = "closed-auth-user"   // (Connection (closed|reset)|Disconnected) (by|from) (authenticating|invalid) user U H port P [preauth]
	RuleKexIdent       = "kex-identification" // kex_exchange_identification: Connection closed by remote host|...: the connection's address
	RuleReadSocket     = "read-socket"        // Read from socket failed: Connection reset by peer: the connection's address
	// aggressive mode adds these.
	RuleFailedPublickey = "failed-publickey" // Failed publickey for U from H port P ssh2: KEY (a valid user)
	RuleNegotiate       = "negotiate"        // Unable to negotiate with H port P: no matching <algorithm> found. ...; Unable to negotiate a <algorithm>, no matching <algorithm> found: ... (the connection's address)
	RuleNoAuthMethods   = "no-auth-methods"  // Received disconnect from H[ port P]:14: No [supported ]authentication methods available
)

var sshdRules = map[string][]string{
	ModeNormal: {RuleFailed, RuleInvalidUser, RuleNotAllowed, RuleAccountLocked, RuleRootRefused, RulePAM, RuleMaxAuthTries,
		RuleTooManyFailures, RuleRefusedConnect, RuleAuthFail, RuleUserChange, RuleSeveralUsers},
	ModeDDoS: {RuleNoIdent, RuleBadVersion, RuleBanner, RuleTimeout, RuleDispatchFatal, RuleClosedPreauth, RuleClosedAuthUser,
		RuleKexIdent, RuleReadSocket},
	ModeAggressive: {RuleFailedPublickey, RuleNegotiate, RuleNoAuthMethods},
}

// sshdMatch is the trusted journal match of the sshd filter (SPEC.md, "Trust"). The third alternative
// takes root's entries named sshd whose sender journald could not look up ("_COMM=": no _COMM at
// all): an sshd process that logged a failure and exited at once, before journald read /proc,
// which is common when an attacker drops the connection after each try and journald is busy. Only
// root can write an entry with _UID=0, so an unprivileged `logger -t sshd` still counts for nothing;
// root's own `logger -t sshd` counts only when journald misses its _COMM=logger, as it may for any
// short-lived root process (and root can change the firewall anyway).
var sshdMatch = []string{
	"_UID=0", "_SYSTEMD_UNIT=ssh.service", "_SYSTEMD_UNIT=sshd.service",
	"+",
	"_UID=0", "_COMM=sshd", "_COMM=sshd-session", "_COMM=sshd-auth",
	"+",
	"_UID=0", "_COMM=", "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session", "SYSLOG_IDENTIFIER=sshd-auth",
}

// sshdFilter is the hand-written sshd filter.
type sshdFilter struct {
	ddos, aggressive bool
}

// SSHD returns the built-in sshd filter in mode "normal", "ddos" or "aggressive" ("" is normal).
// The package documentation says what each mode matches and what counts as one failure.
func SSHD(mode string) (*Filter, error) {
	s := &sshdFilter{}
	rules := append([]string(nil), sshdRules[ModeNormal]...)
	switch mode {
	case "", ModeNormal:
	case ModeDDoS:
		s.ddos = true
		rules = append(rules, sshdRules[ModeDDoS]...)
	case ModeAggressive:
		s.ddos, s.aggressive = true, true
		rules = append(rules, sshdRules[ModeDDoS]...)
		rules = append(rules, sshdRules[ModeAggressive]...)
	default:
		return nil, fmt.Errorf("sshd: %w %q (want normal, ddos or aggressive)", ErrUnknownMode, mode)
	}
	return &Filter{name: "sshd", match: sshdMatch, rules: rules, sshd: s}, nil
}

const preauthSuffix = " [preauth]"

// lineKind is what an sshd line means for the connection that wrote it (see conns.go).
type lineKind uint8

const (
	lineNone     lineKind = iota // nothing the filter knows
	lineInfo                     // no failure, but it names the connection's address (a disconnect, say)
	lineFailure                  // a failure by itself
	lineRefusal                  // the user name is refused (Invalid user, not allowed, account locked)
	lineFailed                   // "Failed <method> ...": a rejected credential
	linePAM                      // sshd's PAM error for a rejected credential
	linePubkey                   // a valid user's "Failed publickey" (normal and ddos modes)
	lineMaxTries                 // MaxAuthTries reached
	lineTooMany                  // the disconnect that follows MaxAuthTries
	lineEnd                      // ddos: the connection ended before authentication
	lineLogin                    // "Accepted ..."
)

// sshdLine is one message taken apart: what it is, and what it says about its connection.
type sshdLine struct {
	kind   lineKind
	rule   string
	addr   netip.Addr // invalid: the line names no address
	msg    string     // the message, as the rules read it (for port)
	user   string     // the user name the line names, without "invalid user " ("" when none)
	method string     // Failed and Accepted lines
	pid    int        // "Timeout before authentication for connection ..., pid = N": the connection's process
	ends   bool       // the line reports that its connection ended (a disconnect, a timeout)
	final  bool       // and it is the last line sshd writes for it (closed, reset, disconnected, timed out)
}

// alone is what the line is read by itself, with no connection around it.
func (l *sshdLine) alone() Result {
	switch l.kind {
	case lineNone, lineInfo, linePubkey:
		return Result{}
	case lineLogin:
		return Result{Kind: Login, Addr: l.addr, Rule: RuleAccepted, User: l.user, Method: l.method}
	}
	if !l.addr.IsValid() {
		return Result{}
	}
	return Result{Kind: Failure, Addr: l.addr, Rule: l.rule}
}

// classify reads msg by itself (Filter.Classify).
func (s *sshdFilter) classify(msg string) Result {
	l := s.read(msg)
	return l.alone()
}

// read takes msg apart. It dispatches on the message's first bytes; no rule runs unless its literal
// prefix is there.
func (s *sshdFilter) read(msg string) sshdLine {
	for len(msg) > 0 && (msg[len(msg)-1] == ' ' || msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r') {
		msg = msg[:len(msg)-1]
	}
	if hasControl(msg) {
		return sshdLine{}
	}
	msg = trimSolarisID(trimKernelPrefix(msg))
	preauth := false
	if strings.HasSuffix(msg, preauthSuffix) {
		msg, preauth = msg[:len(msg)-len(preauthSuffix)], true
	}
	if len(msg) > 7 && msg[5] == ':' && msg[6] == ' ' && (strings.HasPrefix(msg, "error") || strings.HasPrefix(msg, "fatal")) {
		msg = msg[7:]
		msg = strings.TrimPrefix(msg, "PAM: ")
	}
	if len(msg) < 8 {
		return sshdLine{}
	}
	l := sshdLine{kind: lineFailure}
	var ok bool
	switch msg[0] {
	case 'F':
		if strings.HasPrefix(msg, "Failed ") {
			ok = s.failed(&l, msg[len("Failed "):])
		}
	case 'I':
		if strings.HasPrefix(msg, "Invalid user ") || strings.HasPrefix(msg, "Illegal user ") {
			l.kind, l.rule = lineRefusal, RuleInvalidUser
			l.addr, ok = hostAfterFrom(msg[len("Invalid user"):], false)
			l.user = userBefore(msg[len("Invalid user "):], " from ")
		}
	case 'U':
		switch {
		case strings.HasPrefix(msg, "User not known to the underlying authentication module for "):
			l.kind, l.rule = linePAM, RulePAM
			l.addr, ok = pamHost(msg)
		case strings.HasPrefix(msg, "User "):
			ok = notAllowed(&l, msg)
		case s.aggressive && strings.HasPrefix(msg, "Unable to negotiate with "):
			l.rule = RuleNegotiate
			l.addr, ok = negotiate(msg[len("Unable to negotiate with "):])
		case s.aggressive && strings.HasPrefix(msg, "Unable to negotiate a "):
			// Before OpenSSH 7.3: no address; the connection has it.
			l.rule, ok = RuleNegotiate, true
		}
	case 'n':
		if s.aggressive && strings.HasPrefix(msg, "no matching ") && strings.Contains(msg, " found: ") {
			l.rule, ok = RuleNegotiate, true // "no matching cipher found: client ... server ...", no address
		}
	case 'k':
		if s.ddos && strings.HasPrefix(msg, "kex_exchange_identification: ") && kexIdentification(msg[len("kex_exchange_identification: "):]) {
			l.kind, l.rule, ok = lineEnd, RuleKexIdent, true // no address; the connection has it
		}
	case 'A', 'a':
		switch {
		case strings.HasPrefix(msg, "Accepted "):
			l.kind = lineLogin
			l.method, l.user, l.addr, ok = methodForUserFrom(msg[len("Accepted "):])
		case strings.HasPrefix(msg[1:], "uthentication failure for "), strings.HasPrefix(msg[1:], "uthentication error for "),
			strings.HasPrefix(msg[1:], "uthentication failed for "):
			l.kind, l.rule = linePAM, RulePAM
			l.addr, ok = pamHost(msg)
		}
	case 'R':
		switch {
		case strings.HasPrefix(msg, "ROOT LOGIN REFUSED FROM "):
			l.rule, l.user = RuleRootRefused, "root"
			l.addr, ok = hostThenPort(msg[len("ROOT LOGIN REFUSED FROM "):])
		case strings.HasPrefix(msg, "Received disconnect from "):
			ok = s.receivedDisconnect(&l, msg[len("Received disconnect from "):])
		case s.ddos && msg == "Read from socket failed: Connection reset by peer":
			l.kind, l.rule, ok = lineEnd, RuleReadSocket, true // no address; the connection has it
		}
	case 'r':
		if strings.HasPrefix(msg, "refused connect from ") {
			l.rule = RuleRefusedConnect
			l.addr, ok = refusedConnect(msg[len("refused connect from "):])
		}
	case 'm':
		if strings.HasPrefix(msg, "maximum authentication attempts exceeded for ") {
			l.kind, l.rule = lineMaxTries, RuleMaxAuthTries
			l.addr, ok = maxAuthTries(msg)
			l.user = strings.TrimPrefix(userBefore(msg[len("maximum authentication attempts exceeded for "):], " from "), "invalid user ")
		}
	case 'D':
		switch {
		case strings.HasPrefix(msg, "Disconnecting: Too many authentication failures"):
			// The form before OpenSSH 8.2: no address; the connection has it.
			rest := msg[len("Disconnecting: Too many authentication failures"):]
			if rest == "" || strings.HasPrefix(rest, " for ") {
				l.kind, l.rule, l.ends, ok = lineTooMany, RuleTooManyFailures, true, true
				l.user = strings.TrimPrefix(rest, " for ")
			}
		case strings.HasPrefix(msg, "Disconnecting "):
			ok = disconnecting(&l, msg[len("Disconnecting "):])
		case strings.HasPrefix(msg, "Disconnected from "):
			ok = s.closed(&l, msg[len("Disconnected from "):], preauth)
		case strings.HasPrefix(msg, "Disconnected by "):
			ok = s.closed(&l, msg[len("Disconnected by "):], preauth)
		case s.ddos && strings.HasPrefix(msg, "Did not receive identification string from "):
			l.rule, l.ends = RuleNoIdent, true
			l.addr, ok = hostThenPort(msg[len("Did not receive identification string from "):])
		}
	case 'C':
		for _, p := range []string{"Connection closed by ", "Connection reset by ", "Connection closed from ", "Connection reset from "} {
			if strings.HasPrefix(msg, p) {
				ok = s.closed(&l, msg[len(p):], preauth)
				break
			}
		}
		if rest, isFrom := strings.CutPrefix(msg, "Connection from "); isFrom {
			// LogLevel VERBOSE: "Connection from H port P on A port B[ rdomain "R"]", the first
			// line of a connection. No failure; it names the connection's address.
			h, t, _ := strings.Cut(rest, " port ")
			if d := digits(t); d > 0 && strings.HasPrefix(t[d:], " on ") {
				l.kind = lineInfo
				l.addr, ok = parseAddr(h)
			}
		}
	case 'S':
		if rest, isAudit := strings.CutPrefix(msg, "SSH: Server;Ltype: "); isAudit {
			// Red Hat's crypto audit line: "SSH: Server;Ltype: Version;Remote: H-P;...": no failure;
			// it names the connection's address.
			if _, t, found := strings.Cut(rest, ";Remote: "); found {
				t, _, _ = strings.Cut(t, ";")
				if i := strings.LastIndexByte(t, '-'); i > 0 && digits(t[i+1:]) == len(t)-i-1 {
					l.kind = lineInfo
					l.addr, ok = parseAddr(t[:i])
				}
			}
		}
	case 'B':
		if s.ddos && strings.HasPrefix(msg, "Bad protocol version identification ") {
			l.rule = RuleBadVersion
			l.addr, ok = hostAfterFrom(msg[len("Bad protocol version identification"):], false)
		}
	case 'b':
		if s.ddos && strings.HasPrefix(msg, "banner exchange: Connection from ") {
			l.rule = RuleBanner
			l.addr, ok = hostPortColon(msg[len("banner exchange: Connection from "):])
		}
	case 'T':
		if s.ddos && strings.HasPrefix(msg, "Timeout before authentication for ") {
			ok = timeout(&l, msg[len("Timeout before authentication for "):])
		}
	case 's':
		if s.ddos && strings.HasPrefix(msg, "ssh_dispatch_run_fatal: Connection from ") {
			l.rule = RuleDispatchFatal
			l.addr, ok = dispatchFatal(msg[len("ssh_dispatch_run_fatal: Connection from "):])
		}
	}
	if !ok {
		return sshdLine{}
	}
	l.msg = msg
	return l
}

// port returns the client's port the line names after its address, or 0. Only a connection without
// a process id needs it, so it is found on demand.
func (l *sshdLine) port() int {
	if !l.addr.IsValid() {
		return 0
	}
	return portAfter(l.msg, l.addr)
}

// hasControl reports whether s holds a C0 control character or DEL. sshd escapes them in everything
// it logs (OpenSSH's do_log runs strnvis over the message), so such a message is not sshd's own
// line: "Failed password for root from 192.0.2.1 port 22 ssh2\n from 192.0.2.2 port 22 ssh2" is one
// MESSAGE that no sshd wrote.
func hasControl(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x20, or 0x7f (x^0x7f...7f has a zero byte): the classic "has a byte less
		// than n" test, on eight bytes at once.
		if (x-0x20*ones)&^x&highs != 0 || (x^0x7f*ones-ones)&^(x^0x7f*ones)&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// trimKernelPrefix drops the "kernel: [ 12.345]: " that some journals and syslog relays put before
// a message.
func trimKernelPrefix(s string) string {
	t, ok := strings.CutPrefix(s, "kernel:")
	if !ok {
		return s
	}
	t = strings.TrimPrefix(t, " ")
	if t, ok = strings.CutPrefix(t, "["); !ok {
		return s
	}
	t = strings.TrimLeft(t, " ")
	d := digits(t)
	if d == 0 || len(t) <= d || t[d] != '.' {
		return s
	}
	t = t[d+1:]
	if d = digits(t); d == 0 || len(t) <= d || t[d] != ']' {
		return s
	}
	t = strings.TrimPrefix(t[d+1:], ":")
	if u := strings.TrimLeft(t, " "); len(u) < len(t) {
		return u
	}
	return s
}

// trimSolarisID drops the "[ID 800047 auth.info] " that Solaris' syslog puts before a message.
func trimSolarisID(s string) string {
	t, ok := strings.CutPrefix(s, "[ID ")
	if !ok {
		return s
	}
	d := digits(t)
	if d == 0 || len(t) <= d || t[d] != ' ' {
		return s
	}
	fac, rest, ok := strings.Cut(t[d+1:], "] ")
	if !ok || fac == "" || strings.IndexByte(fac, ' ') >= 0 {
		return s
	}
	return rest
}

// kexIdentification reports whether s, after "kex_exchange_identification: ", is a client that
// never sent its identification: "[read: ]Connection closed by remote host", "... reset by peer",
// or "client sent invalid protocol identifier ...".
func kexIdentification(s string) bool {
	s = strings.TrimPrefix(s, "read: ")
	for _, p := range []string{"Connection closed by remote host", "Connection reset by peer", "connection closed by remote host",
		"connection reset by peer", "Client sent invalid protocol identifier", "client sent invalid protocol identifier"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// portAfter returns the port sshd wrote after the address a: the number of the last "A port N"
// in msg whose A is a ("H port N" tails, the port sshd writes after the address), or 0.
func portAfter(msg string, a netip.Addr) int {
	for end := len(msg); ; {
		i := strings.LastIndex(msg[:end], " port ")
		if i < 0 {
			return 0
		}
		end = i
		_, tok := lastToken(msg[:i])
		if h, ok := parseAddr(tok); !ok || h != a {
			continue
		}
		t := msg[i+len(" port "):]
		d := digits(t)
		if d == 0 || d > 5 {
			continue
		}
		p, _ := strconv.Atoi(t[:d])
		return p
	}
}

// userBefore returns s up to the last sep in it ("" when there is none).
func userBefore(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i]
	}
	return ""
}

// failed handles "Failed <method> for [invalid user ]U from H[ port P[ ssh1|ssh2[: INFO]]]".
func (s *sshdFilter) failed(l *sshdLine, rest string) bool {
	method, user, a, ok := methodForUserFrom(rest)
	if !ok {
		return false
	}
	l.kind, l.rule, l.addr, l.method = lineFailed, RuleFailed, a, method
	user, invalid := strings.CutPrefix(user, "invalid user ")
	l.user = user
	if method == "publickey" && !invalid {
		l.kind = linePubkey
		if s.aggressive {
			l.kind, l.rule = lineFailure, RuleFailedPublickey
		}
	}
	return true
}

// methodForUserFrom reads "<method> for U from H[ port P[ ssh1|ssh2[: INFO]]]", what follows
// "Failed " and "Accepted ". The method and U are client-chosen; INFO, written by publickey and
// hostbased, may contain client-chosen text too (certificate IDs, hostbased client user and host).
// Every " from " is tried as the one sshd wrote; exactly one must leave a tail sshd could have
// written, else the line is ambiguous and not ok. user is U as written, with "invalid user " if sshd
// wrote it.
func methodForUserFrom(rest string) (method, user string, a netip.Addr, ok bool) {
	i := strings.Index(rest, " for ")
	if i < 0 {
		return "", "", netip.Addr{}, false
	}
	method, tail := rest[:i], rest[i+len(" for "):]
	withInfo := method == "publickey" || method == "hostbased"
	n := 0
	for off := 0; n < 2; {
		j := strings.Index(tail[off:], " from ")
		if j < 0 {
			break
		}
		at := off + j
		off = at + len(" from ")
		hostText, _, _ := strings.Cut(tail[off:], " ")
		if !failedTail(tail[off+len(hostText):], withInfo) {
			continue
		}
		h, ok := parseAddr(hostText)
		if !ok {
			continue
		}
		a, user, n = h, tail[:at], n+1
	}
	if n != 1 {
		return "", "", netip.Addr{}, false
	}
	return method, user, a, true
}

// failedTail reports whether t, the text after the address in a "Failed ..." line, is what sshd
// writes there: "", " port P", " port P ssh1|ssh2", or " port P ssh2: INFO" for methods with INFO.
func failedTail(t string, withInfo bool) bool {
	if t == "" {
		return true
	}
	if !strings.HasPrefix(t, " port ") {
		return false
	}
	t = t[len(" port "):]
	d := digits(t)
	if d == 0 {
		return false
	}
	t = t[d:]
	switch {
	case t == "", t == " ssh2", t == " ssh1":
		return true
	case withInfo && strings.HasPrefix(t, " ssh2: "):
		return keyInfo(t[len(" ssh2: "):])
	}
	return false
}

// keyInfo reports whether s has the shape of the INFO sshd writes for a key: "TYPE FINGERPRINT", or
// "TYPE-CERT ... CA TYPE FINGERPRINT" for a certificate, or "TYPE FINGERPRINT, client user "U",
// client host "H"" for hostbased.
func keyInfo(s string) bool {
	typ, rest, ok := strings.Cut(s, " ")
	if !ok || !keyType(typ) {
		return false
	}
	if !strings.Contains(rest, " ") {
		return rest != ""
	}
	if strings.HasSuffix(typ, "-CERT") {
		k := strings.LastIndex(rest, " CA ")
		if k < 0 {
			return false
		}
		ca, fp, ok := strings.Cut(rest[k+len(" CA "):], " ")
		return ok && keyType(ca) && fp != "" && !strings.Contains(fp, " ")
	}
	fp, _, ok := strings.Cut(rest, ", client user \"")
	return ok && fp != "" && !strings.Contains(fp, " ") && strings.HasSuffix(rest, "\"")
}

// keyType reports whether s looks like sshkey_type(): "RSA", "ED25519-SK", "ECDSA-CERT", ...
func keyType(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// digits returns how many ASCII digits s starts with.
func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// trimPort removes a trailing " port N".
func trimPort(s string) string {
	i := strings.LastIndex(s, " port ")
	if i < 0 {
		return s
	}
	if d := digits(s[i+len(" port "):]); d > 0 && i+len(" port ")+d == len(s) {
		return s[:i]
	}
	return s
}

// lastToken splits s at its last space.
func lastToken(s string) (before, tok string) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

// hostAfterFrom handles "<client text> from H[ port P]" (and with ssh2 " ssh2" after the port when
// ssh is set): the address is the last token, and must follow " from".
func hostAfterFrom(s string, ssh bool) (netip.Addr, bool) {
	if ssh {
		s = strings.TrimSuffix(s, " ssh2")
	}
	before, tok := lastToken(trimPort(s))
	if !strings.HasSuffix(before, " from") {
		return netip.Addr{}, false
	}
	return parseAddr(tok)
}

// hostThenPort handles "H[ port P]" after a fixed prefix.
func hostThenPort(s string) (netip.Addr, bool) {
	s = trimPort(s)
	if strings.IndexByte(s, ' ') >= 0 {
		return netip.Addr{}, false
	}
	return parseAddr(s)
}

// hostPortColon handles "H port P: <sshd's reason>" after a fixed prefix.
func hostPortColon(s string) (netip.Addr, bool) {
	h, rest, ok := strings.Cut(s, " port ")
	if !ok || strings.IndexByte(h, ' ') >= 0 {
		return netip.Addr{}, false
	}
	d := digits(rest)
	if d == 0 || !strings.HasPrefix(rest[d:], ": ") {
		return netip.Addr{}, false
	}
	return parseAddr(h)
}

// notAllowedReasons are the reasons sshd's allowed_user() writes after the address.
var notAllowedReasons = []string{
	"not listed in AllowUsers",
	"listed in DenyUsers",
	"not in any group",
	"a group is listed in DenyGroups",
	"none of user's groups are listed in AllowGroups",
}

// notAllowed handles "User U from H not allowed because <reason>", and "User U not allowed because
// account is locked", which names no address: the connection has it.
func notAllowed(l *sshdLine, msg string) bool {
	i := strings.LastIndex(msg, " not allowed because ")
	if i < 0 {
		return false
	}
	reason := msg[i+len(" not allowed because "):]
	if reason == "account is locked" {
		l.kind, l.rule, l.user = lineRefusal, RuleAccountLocked, msg[len("User "):i]
		return true
	}
	for _, r := range notAllowedReasons {
		if reason == r {
			var ok bool
			l.kind, l.rule = lineRefusal, RuleNotAllowed
			l.addr, ok = hostAfterFrom(msg[len("User"):i], false)
			l.user = userBefore(msg[len("User "):i], " from ")
			return ok
		}
	}
	return false
}

// pamHost handles "... for U from H[ via A]".
func pamHost(msg string) (netip.Addr, bool) {
	before, tok := lastToken(msg)
	if b2, via := lastToken(before); via == "via" {
		if b3, h := lastToken(b2); strings.HasSuffix(b3, " from") {
			return parseAddr(h)
		}
		return netip.Addr{}, false
	}
	if !strings.HasSuffix(before, " from") || !strings.Contains(before, " for ") {
		return netip.Addr{}, false
	}
	return parseAddr(tok)
}

// maxAuthTries handles "maximum authentication attempts exceeded for [invalid user ]U from H port P ssh2".
func maxAuthTries(msg string) (netip.Addr, bool) {
	return hostAfterFrom(msg[len("maximum authentication attempts exceeded for"):], true)
}

// disconnecting handles what follows "Disconnecting ": "(authenticating|invalid) user U H port P:
// Too many authentication failures" and "(authenticating|invalid) user U H port P: Change of username
// or service not allowed: (U,S) -> (V,S2)".
func disconnecting(l *sshdLine, s string) bool {
	t, ok := cutAuthUser(s)
	if !ok {
		return false
	}
	if u, ok := strings.CutSuffix(t, ": Too many authentication failures"); ok {
		var h string
		if l.user, h, ok = userHostPort(u); !ok {
			return false
		}
		l.kind, l.rule, l.ends = lineTooMany, RuleTooManyFailures, true
		l.addr, ok = parseAddr(h)
		return ok
	}
	return userChange(l, t)
}

// userChangeReason is what sshd writes when a client asks for another user (or service) on a
// connection that already named one; sshd disconnects it.
const userChangeReason = ": Change of username or service not allowed: "

// userChange handles "U H port P: Change of username or service not allowed: (U,S) -> (V,S2)". The
// client chose U, V and the services, on both sides of the address; but U is written twice, so a
// reading is sshd's only if the U before the address is the U the reason starts with. sshd cuts the
// reason at 100 bytes, which may cut U short. Exactly one reading must fit, else no failure.
func userChange(l *sshdLine, t string) bool {
	n := 0
	for off := 0; n < 2; {
		j := strings.Index(t[off:], userChangeReason)
		if j < 0 {
			break
		}
		at := off + j
		off = at + len(userChangeReason)
		before, ok := strings.CutSuffix(strings.TrimRight(t[:at], "0123456789"), " port ")
		if !ok || len(before)+len(" port ") == at {
			continue
		}
		user, h := lastToken(before)
		a, ok := parseAddr(h)
		if !ok || !strings.Contains(before, " ") {
			continue
		}
		reason, want := t[off:], "("+user+","
		full := len(userChangeReason) - 2 + len(reason) // the reason as sshd cut it, "Change ..."
		if !strings.HasPrefix(reason, want) && !(full >= 100 && strings.HasPrefix(want, reason)) {
			continue
		}
		l.addr, l.user, n = a, user, n+1
	}
	if n != 1 {
		return false
	}
	l.kind, l.rule, l.ends = lineFailure, RuleUserChange, true
	return true
}

// cutAuthUser cuts the "authenticating user " or "invalid user " that sshd writes before the user
// name of a connection that has named one.
func cutAuthUser(s string) (string, bool) {
	if t, ok := strings.CutPrefix(s, "authenticating user "); ok {
		return t, true
	}
	return strings.CutPrefix(s, "invalid user ")
}

// userHostPort splits "U H port P" (U may be empty, or hold spaces) into U and H.
func userHostPort(s string) (user, host string, ok bool) {
	t := trimPortStrict(s)
	i := strings.LastIndexByte(t, ' ')
	if i < 0 {
		return "", "", false
	}
	return t[:i], t[i+1:], true
}

// trimPortStrict removes a trailing " port N", returning "" if there is none.
func trimPortStrict(s string) string {
	t := trimPort(s)
	if len(t) == len(s) {
		return ""
	}
	return t
}

// closed handles what follows "Connection closed by ", "Connection reset by " or "Disconnected from "
// (and "from"/"by" the other way round): "H[ port P]" or "(authenticating|invalid) user U H port P".
// In ddos mode a [preauth] one is a failure (the connection ended before it authenticated); else it
// only names the connection's address.
func (s *sshdFilter) closed(l *sshdLine, rest string, preauth bool) bool {
	l.kind, l.ends, l.final = lineInfo, true, true
	var (
		h        string
		ok       bool
		u, named = cutAuthUser(rest)
	)
	switch {
	case named:
		l.rule = RuleClosedAuthUser
		l.user, h, ok = userHostPort(u)
	case strings.HasPrefix(rest, "user "): // after authentication: a normal disconnect
		l.user, h, ok = userHostPort(rest[len("user "):])
		preauth = false
	default:
		l.rule = RuleClosedPreauth
		h, ok = trimPort(rest), strings.IndexByte(trimPort(rest), ' ') < 0
	}
	if !ok {
		return false
	}
	if l.addr, ok = parseAddr(h); !ok {
		return false
	}
	if s.ddos && preauth {
		l.kind = lineEnd
	}
	return true
}

// receivedDisconnect handles "H port P:CODE: REASON" (before OpenSSH 7.5 "H: CODE: REASON"), the
// client's reason for leaving, written after the address. Code 3 with "...: Auth fail" is a client
// that gave up after its authentication failed (JSch); in aggressive mode code 14, "No [supported ]
// authentication methods available", is a failure too. Other disconnects only name the connection's
// address.
func (s *sshdFilter) receivedDisconnect(l *sshdLine, rest string) bool {
	h, t, _ := strings.Cut(rest, " ")
	if p, ok := strings.CutPrefix(t, "port "); ok {
		d := digits(p)
		if d == 0 || !strings.HasPrefix(p[d:], ":") {
			return false
		}
		t = p[d+1:]
	} else if h, ok = strings.CutSuffix(h, ":"); !ok {
		return false
	}
	a, ok := parseAddr(h)
	if !ok {
		return false
	}
	t = strings.TrimLeft(t, " ")
	d := digits(t)
	if d == 0 || !strings.HasPrefix(t[d:], ":") {
		return false
	}
	code, reason := t[:d], strings.TrimLeft(t[d+1:], " ")
	l.kind, l.addr, l.ends = lineInfo, a, true
	switch {
	case code == "3" && (reason == "Auth fail" || strings.HasSuffix(reason, ": Auth fail")):
		l.kind, l.rule = lineEnd, RuleAuthFail
	case s.aggressive && code == "14" && (reason == "No supported authentication methods available" || reason == "No authentication methods available"):
		l.kind, l.rule = lineFailure, RuleNoAuthMethods
	}
	return true
}

// refusedConnect handles tcp wrappers' "NAME (H)": NAME is the client's host name from DNS (or
// "unknown"), one token.
func refusedConnect(s string) (netip.Addr, bool) {
	name, h, ok := strings.Cut(s, " (")
	if !ok || name == "" || strings.IndexByte(name, ' ') >= 0 {
		return netip.Addr{}, false
	}
	h, ok = strings.CutSuffix(h, ")")
	if !ok {
		return netip.Addr{}, false
	}
	return parseAddr(h)
}

// timeout handles "H[ port P]" and OpenSSH 9.8's "connection from H to H2, pid = N", which the
// listening sshd writes for the connection's process N.
func timeout(l *sshdLine, s string) bool {
	l.rule, l.kind, l.ends, l.final = RuleTimeout, lineEnd, true, true
	var ok bool
	if t, isConn := strings.CutPrefix(s, "connection from "); isConn {
		h, t, _ := strings.Cut(t, " to ")
		i := strings.LastIndex(t, ", pid = ")
		if i < 0 || strings.IndexByte(t[:i], ' ') >= 0 {
			return false
		}
		pid := t[i+len(", pid = "):]
		if d := digits(pid); d == 0 || d != len(pid) || d > 9 {
			return false
		}
		l.pid, _ = strconv.Atoi(pid)
		l.addr, ok = parseAddr(h)
		return ok
	}
	l.addr, ok = hostThenPort(s)
	return ok
}

// negotiate handles "H port P: no matching <algorithm> found. Their offer: ..."; the offer is the
// client's, but it comes after the address.
func negotiate(s string) (netip.Addr, bool) {
	h, rest, ok := strings.Cut(s, " port ")
	if !ok || strings.IndexByte(h, ' ') >= 0 {
		return netip.Addr{}, false
	}
	d := digits(rest)
	if d == 0 || !strings.HasPrefix(rest[d:], ": no matching ") {
		return netip.Addr{}, false
	}
	return parseAddr(h)
}

// dispatchFatal handles "[(authenticating|invalid) user U ]H port P: <reason>"; the reason is one of
// sshd's error strings, so the last " port N: " is sshd's.
func dispatchFatal(s string) (netip.Addr, bool) {
	end := len(s)
	for {
		i := strings.LastIndex(s[:end], " port ")
		if i < 0 {
			return netip.Addr{}, false
		}
		d := digits(s[i+len(" port "):])
		if d > 0 && strings.HasPrefix(s[i+len(" port ")+d:], ": ") {
			before, h := lastToken(s[:i])
			if before != "" && !strings.HasPrefix(before, "authenticating user ") && !strings.HasPrefix(before, "invalid user ") {
				return netip.Addr{}, false
			}
			return parseAddr(h)
		}
		end = i
	}
}
