package jails

import "net/netip"

// Kind is what one message tells a jail.
type Kind uint8

// The kinds of Result.
const (
	None    Kind = iota // neither a failure nor a login
	Failure             // a failure from Addr, found by Rule
	Login               // a successful login from Addr: User logged in by Method
	// Repeat is a line that reports a failed attempt already counted on the same connection (the
	// "Failed password for invalid user U" after "Invalid user U", say): it adds no failure. Only a
	// Tracker reports it; Classify, which reads a line alone, cannot know.
	Repeat
)

// String returns "none", "failure", "login" or "repeat".
func (k Kind) String() string {
	switch k {
	case Failure:
		return "failure"
	case Login:
		return "login"
	case Repeat:
		return "repeat"
	}
	return "none"
}

// RuleAccepted is the Rule of a Login the sshd filter found: "Accepted <method> for <user> from <host>
// port <port> ssh2[: <key>]".
const RuleAccepted = "accepted"

// Result is what a filter made of one message. Addr is set for Failure and Login (IPv4-mapped IPv6
// addresses as IPv4, zones dropped); User and Method only for a Login (User as sshd wrote it,
// Method "password", "publickey", "keyboard-interactive/pam", ...).
type Result struct {
	Kind   Kind
	Addr   netip.Addr
	Rule   string
	User   string
	Method string
}
