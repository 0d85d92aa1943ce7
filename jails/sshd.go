package jails

import (
	"fmt"
	"net/netip"
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
	RuleTooManyFailures = "too-many-failures" // Disconnecting (authenticating|invalid) user U H port P: Too many authentication failures
	// ddos mode adds these.
	RuleNoIdent       = "no-identification" // Did not receive identification string from H[ port P]
	RuleBadVersion    = "bad-version"       // Bad protocol version identification 'V' from H[ port P]
	RuleBanner        = "banner-exchange"   // banner exchange: Connection from H port P: <reason>
	RuleTimeout       = "timeout-preauth"   // Timeout before authentication for H[ port P]
	RuleDispatchFatal = "dispatch-fatal"    // ssh_dispatch_run_fatal: Connection from [(authenticating|invalid) user U ]H port P: <reason>
	RuleClosedPreauth = "closed-preauth"    // Connection (closed|reset) by H[ port P] [preauth]; Disconnected from H port P [preauth]
	// aggressive mode adds these.
	RuleFailedPublickey = "failed-publickey" // Failed publickey for U from H port P ssh2: KEY (a valid user)
	RuleNegotiate       = "negotiate"        // Unable to negotiate with H port P: no matching <algorithm> found. ...
	RuleNoAuthMethods   = "no-auth-methods"  // Received disconnect from H[ port P]:14: No [supported ]authentication methods available
	RuleClosedAuthUser  = "closed-auth-user" // (Connection (closed|reset) by|Disconnected from) (authenticating|invalid) user U H port P [preauth]
)

var sshdRules = map[string][]string{
	ModeNormal:     {RuleFailed, RuleInvalidUser, RuleNotAllowed, RuleRootRefused, RulePAM, RuleMaxAuthTries, RuleTooManyFailures},
	ModeDDoS:       {RuleNoIdent, RuleBadVersion, RuleBanner, RuleTimeout, RuleDispatchFatal, RuleClosedPreauth},
	ModeAggressive: {RuleFailedPublickey, RuleNegotiate, RuleNoAuthMethods, RuleClosedAuthUser},
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
	"_UID=0", "_COMM=sshd", "_COMM=sshd-session",
	"+",
	"_UID=0", "_COMM=", "SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session",
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

// classify dispatches on the message's first bytes; no rule runs unless its literal prefix is there.
func (s *sshdFilter) classify(msg string) Result {
	for len(msg) > 0 && (msg[len(msg)-1] == ' ' || msg[len(msg)-1] == '\n' || msg[len(msg)-1] == '\r' || msg[len(msg)-1] == '\t') {
		msg = msg[:len(msg)-1]
	}
	preauth := false
	if strings.HasSuffix(msg, preauthSuffix) {
		msg, preauth = msg[:len(msg)-len(preauthSuffix)], true
	}
	pam := false
	if len(msg) > 7 && msg[5] == ':' && msg[6] == ' ' && (strings.HasPrefix(msg, "error") || strings.HasPrefix(msg, "fatal")) {
		msg = msg[7:]
		if strings.HasPrefix(msg, "PAM: ") {
			msg, pam = msg[5:], true
		}
	}
	if len(msg) < 8 {
		return Result{}
	}
	var (
		a    netip.Addr
		ok   bool
		rule string
	)
	switch msg[0] {
	case 'F':
		if strings.HasPrefix(msg, "Failed ") {
			a, rule, ok = s.failed(msg[len("Failed "):])
		}
	case 'I':
		if strings.HasPrefix(msg, "Invalid user ") || strings.HasPrefix(msg, "Illegal user ") {
			a, ok = hostAfterFrom(msg[len("Invalid user"):], false)
			rule = RuleInvalidUser
		}
	case 'U':
		switch {
		case pam && strings.HasPrefix(msg, "User not known to the underlying authentication module for "):
			a, ok = pamHost(msg)
			rule = RulePAM
		case strings.HasPrefix(msg, "User "):
			a, ok = notAllowed(msg)
			rule = RuleNotAllowed
		case s.aggressive && strings.HasPrefix(msg, "Unable to negotiate with "):
			a, ok = negotiate(msg[len("Unable to negotiate with "):])
			rule = RuleNegotiate
		}
	case 'A', 'a':
		if strings.HasPrefix(msg, "Accepted ") {
			return accepted(msg[len("Accepted "):])
		}
		if pam && (strings.HasPrefix(msg[1:], "uthentication failure for ") || strings.HasPrefix(msg[1:], "uthentication error for ")) {
			a, ok = pamHost(msg)
			rule = RulePAM
		}
	case 'R':
		switch {
		case strings.HasPrefix(msg, "ROOT LOGIN REFUSED FROM "):
			a, ok = hostThenPort(msg[len("ROOT LOGIN REFUSED FROM "):])
			rule = RuleRootRefused
		case s.aggressive && strings.HasPrefix(msg, "Received disconnect from "):
			a, ok = noAuthMethods(msg[len("Received disconnect from "):])
			rule = RuleNoAuthMethods
		}
	case 'm':
		if strings.HasPrefix(msg, "maximum authentication attempts exceeded for ") {
			a, ok = maxAuthTries(msg)
			rule = RuleMaxAuthTries
		}
	case 'D':
		switch {
		case strings.HasPrefix(msg, "Disconnecting "):
			a, ok = tooMany(msg[len("Disconnecting "):])
			rule = RuleTooManyFailures
		case s.ddos && preauth && strings.HasPrefix(msg, "Disconnected from "):
			a, rule, ok = s.closed(msg[len("Disconnected from "):])
		case s.ddos && strings.HasPrefix(msg, "Did not receive identification string from "):
			a, ok = hostThenPort(msg[len("Did not receive identification string from "):])
			rule = RuleNoIdent
		}
	case 'C':
		if s.ddos && preauth {
			switch {
			case strings.HasPrefix(msg, "Connection closed by "):
				a, rule, ok = s.closed(msg[len("Connection closed by "):])
			case strings.HasPrefix(msg, "Connection reset by "):
				a, rule, ok = s.closed(msg[len("Connection reset by "):])
			}
		}
	case 'B':
		if s.ddos && strings.HasPrefix(msg, "Bad protocol version identification ") {
			a, ok = hostAfterFrom(msg[len("Bad protocol version identification"):], false)
			rule = RuleBadVersion
		}
	case 'b':
		if s.ddos && strings.HasPrefix(msg, "banner exchange: Connection from ") {
			a, ok = hostPortColon(msg[len("banner exchange: Connection from "):])
			rule = RuleBanner
		}
	case 'T':
		if s.ddos && strings.HasPrefix(msg, "Timeout before authentication for ") {
			a, ok = hostThenPort(msg[len("Timeout before authentication for "):])
			rule = RuleTimeout
		}
	case 's':
		if s.ddos && strings.HasPrefix(msg, "ssh_dispatch_run_fatal: Connection from ") {
			a, ok = dispatchFatal(msg[len("ssh_dispatch_run_fatal: Connection from "):])
			rule = RuleDispatchFatal
		}
	}
	if !ok {
		return Result{}
	}
	return Result{Kind: Failure, Addr: a, Rule: rule}
}

func no() (netip.Addr, string, bool) { return netip.Addr{}, "", false }

// failed handles "Failed <method> for [invalid user ]U from H[ port P[ ssh1|ssh2[: INFO]]]".
func (s *sshdFilter) failed(rest string) (netip.Addr, string, bool) {
	method, user, a, ok := methodForUserFrom(rest)
	if !ok {
		return no()
	}
	rule := RuleFailed
	if method == "publickey" && !strings.HasPrefix(user, "invalid user ") {
		if !s.aggressive {
			return no()
		}
		rule = RuleFailedPublickey
	}
	return a, rule, true
}

// accepted handles "Accepted <method> for U from H port P ssh2[: INFO]", a successful login.
func accepted(rest string) Result {
	method, user, a, ok := methodForUserFrom(rest)
	if !ok {
		return Result{}
	}
	return Result{Kind: Login, Addr: a, Rule: RuleAccepted, User: user, Method: method}
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

// notAllowed handles "User U from H not allowed because <reason>".
func notAllowed(msg string) (netip.Addr, bool) {
	i := strings.LastIndex(msg, " not allowed because ")
	if i < 0 {
		return netip.Addr{}, false
	}
	reason := msg[i+len(" not allowed because "):]
	for _, r := range notAllowedReasons {
		if reason == r {
			return hostAfterFrom(msg[len("User"):i], false)
		}
	}
	return netip.Addr{}, false
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

// tooMany handles "(authenticating|invalid) user U H port P: Too many authentication failures".
func tooMany(s string) (netip.Addr, bool) {
	if !strings.HasPrefix(s, "authenticating user ") && !strings.HasPrefix(s, "invalid user ") {
		return netip.Addr{}, false
	}
	s, ok := strings.CutSuffix(s, ": Too many authentication failures")
	if !ok {
		return netip.Addr{}, false
	}
	before, h := lastToken(trimPortStrict(s))
	if before == "" {
		return netip.Addr{}, false
	}
	return parseAddr(h)
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
// in a [preauth] line: "H[ port P]" (ddos) or "(authenticating|invalid) user U H port P" (aggressive).
func (s *sshdFilter) closed(rest string) (netip.Addr, string, bool) {
	if strings.HasPrefix(rest, "authenticating user ") || strings.HasPrefix(rest, "invalid user ") {
		if !s.aggressive {
			return no()
		}
		before, h := lastToken(trimPortStrict(rest))
		if before == "" {
			return no()
		}
		a, ok := parseAddr(h)
		return a, RuleClosedAuthUser, ok
	}
	if strings.HasPrefix(rest, "user ") { // after authentication: a normal disconnect
		return no()
	}
	a, ok := hostThenPort(rest)
	return a, RuleClosedPreauth, ok
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

// noAuthMethods handles "H[ port P]:14: No [supported ]authentication methods available"; before
// OpenSSH 7.5 the separator is ": 14: ".
func noAuthMethods(s string) (netip.Addr, bool) {
	for _, text := range []string{"14: No supported authentication methods available", "14: No authentication methods available"} {
		hp, ok := strings.CutSuffix(s, text)
		if !ok {
			continue
		}
		hp = strings.TrimSuffix(hp, " ")
		if hp, ok = strings.CutSuffix(hp, ":"); ok {
			return hostThenPort(hp)
		}
	}
	return netip.Addr{}, false
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
