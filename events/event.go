package events

import (
	"fmt"
	"net/netip"
	"time"
)

// Entry is a journal entry behind a decision: the failure lines that made a ban, as `gaoler why` and
// the actions show them.
type Entry struct {
	Time    time.Time `json:"time"`             // __REALTIME_TIMESTAMP
	Cursor  string    `json:"cursor,omitempty"` // the entry's journal cursor, "" when it is not known
	Message string    `json:"message"`          // MESSAGE
	PID     int       `json:"pid,omitempty"`    // _PID of the sender (for sshd, the connection); 0 when unknown
}

// OriginKind says who decided a ban or an unban.
type OriginKind uint8

const (
	// OriginFilter is the jail's own decision from failures in this host's journal.
	OriginFilter OriginKind = iota
	// OriginManual is an admin's ban or unban over the bus; Origin.UID is the caller's uid.
	OriginManual
	// OriginRestored is a ban re-installed at start, after a flushed table, or re-derived from entries
	// read again after a crash: not a new ban, never announced as one.
	OriginRestored
	// OriginPeer is a fleet peer's ban applied here; Origin.Peer names the peer.
	OriginPeer
)

var originNames = [...]string{OriginFilter: "filter", OriginManual: "manual", OriginRestored: "restored", OriginPeer: "peer"}

// String returns the kind's name as the checkpoint, the bus and --json write it.
func (k OriginKind) String() string {
	if int(k) < len(originNames) {
		return originNames[k]
	}
	return fmt.Sprintf("origin(%d)", k)
}

// MarshalText writes the kind's name, as in the checkpoint.
func (k OriginKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *OriginKind) UnmarshalText(b []byte) error {
	v, err := ParseOriginKind(string(b))
	if err == nil {
		*k = v
	}
	return err
}

// ParseOriginKind is the inverse of OriginKind.String.
func ParseOriginKind(s string) (OriginKind, error) {
	for k, n := range originNames {
		if n == s {
			return OriginKind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown origin %q", s)
}

// Origin is who decided a ban or an unban.
type Origin struct {
	Kind OriginKind `json:"kind"`
	UID  uint32     `json:"uid,omitempty"`  // OriginManual: the bus caller's uid
	Peer string     `json:"peer,omitempty"` // OriginPeer: the peer's host name in the fleet
}

// String describes the origin for people: "filter", "manual (uid 0)", "peer h1", "restored".
func (o Origin) String() string {
	switch o.Kind {
	case OriginManual:
		return fmt.Sprintf("manual (uid %d)", o.UID)
	case OriginPeer:
		return "peer " + o.Peer
	}
	return o.Kind.String()
}

// Kind is what an Event announces.
type Kind uint8

const (
	// Ban is a new ban, in the kernel already.
	Ban Kind = iota + 1
	// Unban is a ban lifted (Reason says why: "manual", "expired", "unban-all", "jail removed", "peer").
	Unban
)

// String returns "ban" or "unban", the names actions' `events` lists use.
func (k Kind) String() string {
	switch k {
	case Ban:
		return "ban"
	case Unban:
		return "unban"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Event is a decision announced after the kernel has it: a ban or an unban of a prefix in a jail.
type Event struct {
	Kind     Kind
	Jail     string
	Prefix   netip.Prefix // /32, /128, or a wider prefix
	BannedAt time.Time
	Expires  time.Time
	Count    int    // bans of this prefix so far, this one included
	Origin   Origin // who decided it: for an Unban, who lifted the ban (an expiry is OriginFilter)
	// BanOrigin is who made the ban: for an Unban, the ban lifted; for a restored Ban, who made it
	// when it was new. For a new Ban it is Origin.
	BanOrigin Origin
	Rule      string // the filter rule of the failure that made the ban ("" for manual and peer bans)
	Reason    string // Unban: why
	Entries   []Entry
}

// Maker is who made the ban the event is about: Origin for a new ban, BanOrigin for an unban or a
// restored ban.
func (e Event) Maker() Origin {
	if e.Kind == Ban && e.Origin.Kind != OriginRestored {
		return e.Origin
	}
	return e.BanOrigin
}

// Address prints the event's prefix as users see it: a single address without /32 or /128, a wider
// prefix as a CIDR.
func (e Event) Address() string { return PrefixString(e.Prefix) }

// PrefixString prints a single address without its /32 or /128, and a wider prefix as a CIDR.
func PrefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
