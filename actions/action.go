package actions

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gaoler/gaoler/events"
)

// Action is one configured action. Run does the work for one event; it must return when ctx is done
// (the action's timeout, or the daemon stopping). Close ends what the action still holds (a digest
// waiting for its period) and waits for it.
type Action interface {
	Run(ctx context.Context, ev events.Event) (Result, error)
	Close()
}

// Result says what a successful run did, for the journal: "mailed admin@example.org", "HTTP 200".
// Held is set when the event was kept for later (a digest) instead of acted on now: no "sent" entry
// is written for it.
type Result struct {
	Note    string
	Held    bool
	Skipped string // why the event was let go without acting (a limit): logged, neither sent nor failed
}

// Payload is the JSON object every action gets for an event (exec: on stdin; webhook: the body).
type Payload struct {
	Event    string         `json:"event"` // "ban" or "unban"
	Jail     string         `json:"jail"`
	Address  string         `json:"address"` // an address, or a prefix in CIDR notation
	BannedAt time.Time      `json:"banned_at"`
	Expires  time.Time      `json:"expires"`
	BanTime  int64          `json:"bantime"` // seconds from banned_at to expires
	BanCount int            `json:"ban_count"`
	Host     string         `json:"host"` // this host's name
	Origin   string         `json:"origin"`
	UID      *uint32        `json:"uid,omitempty"`  // a manual ban's or unban's caller
	Peer     string         `json:"peer,omitempty"` // a fleet peer's ban
	Rule     string         `json:"rule,omitempty"`
	Reason   string         `json:"reason,omitempty"` // why an unban happened
	Entries  []PayloadEntry `json:"entries"`
}

// PayloadEntry is one journal entry behind a ban.
type PayloadEntry struct {
	Time         time.Time `json:"time"`
	RealtimeUsec int64     `json:"realtime_usec"` // __REALTIME_TIMESTAMP
	Cursor       string    `json:"cursor,omitempty"`
	Message      string    `json:"message"`
}

// NewPayload builds the payload of ev on host.
func NewPayload(ev events.Event, host string) Payload {
	p := Payload{
		Event:    ev.Kind.String(),
		Jail:     ev.Jail,
		Address:  ev.Address(),
		BannedAt: ev.BannedAt.UTC(),
		Expires:  ev.Expires.UTC(),
		BanCount: ev.Count,
		Host:     host,
		Origin:   ev.Origin.Kind.String(),
		Peer:     ev.Origin.Peer,
		Rule:     ev.Rule,
		Reason:   ev.Reason,
		Entries:  make([]PayloadEntry, 0, len(ev.Entries)),
	}
	if !ev.BannedAt.IsZero() && ev.Expires.After(ev.BannedAt) {
		p.BanTime = int64(ev.Expires.Sub(ev.BannedAt).Round(time.Second) / time.Second)
	}
	if ev.Origin.Kind == events.OriginManual {
		uid := ev.Origin.UID
		p.UID = &uid
	}
	for _, e := range ev.Entries {
		p.Entries = append(p.Entries, PayloadEntry{Time: e.Time.UTC(), RealtimeUsec: e.Time.UnixMicro(), Cursor: e.Cursor, Message: e.Message})
	}
	return p
}

// JSON returns the payload as one line of JSON.
func (p Payload) JSON() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // a Payload holds only strings, numbers and times
	}
	return b
}
