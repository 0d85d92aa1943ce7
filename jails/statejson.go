package jails

import (
	"encoding/json"
	"io"
	"net/netip"
	"runtime"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gaoler/gaoler/events"
)

// AppendJSON appends s as encoding/json encodes it, byte for byte, but without reflection: the daemon
// checkpoints the state once a second under attack, and with tens of thousands of tracked addresses
// encoding/json's reflection and its per-value MarshalJSON calls were most of that cost. State still
// decodes with encoding/json.
func (s *State) AppendJSON(b []byte) []byte {
	o := jsonOut{b: b}
	s.encode(&o)
	return o.b
}

// WriteJSON writes s to w as AppendJSON encodes it, a chunk at a time: the state of 20,000 banned
// addresses is 2 MB of JSON, and growing one buffer to hold it all (copying it at each doubling, into
// fresh memory) cost more than encoding it.
func (s *State) WriteJSON(w io.Writer) error {
	o := jsonOut{b: make([]byte, 0, 2*jsonChunk), w: w}
	s.encode(&o)
	o.flush()
	return o.err
}

// jsonChunk is how much of the JSON WriteJSON gathers before writing it out.
const jsonChunk = 32 << 10

// jsonOut is where the encoder appends: b, written to w (when not nil) whenever it holds a chunk.
type jsonOut struct {
	b       []byte
	w       io.Writer
	err     error
	records int
}

// spill writes b out once it holds a chunk; the encoder calls it between records. Writing to w (the
// saver's checkpoint, 100,000 bans in tens of milliseconds), it lets the other goroutines run every
// yieldEvery records: with every P busy, Go runs a due timer (the journal reader's next poll) only
// at a scheduling point, and a goroutine that never reaches one is preempted after 10 ms.
func (o *jsonOut) spill() {
	if o.w == nil {
		return
	}
	if len(o.b) >= jsonChunk {
		o.flush()
	}
	if o.records++; o.records%yieldEvery == 0 {
		runtime.Gosched()
	}
}

// yieldEvery is how many records a long loop off the daemon's lock handles between yields: about
// 50 us of work.
const yieldEvery = 256

func (o *jsonOut) flush() {
	if o.w == nil || o.err != nil {
		return
	}
	_, o.err = o.w.Write(o.b)
	o.b = o.b[:0]
}

func (s *State) encode(o *jsonOut) {
	var jails []jailJSON
	if s.Jails != nil {
		jails = make([]jailJSON, len(s.Jails))
		for i := range s.Jails {
			js := &s.Jails[i]
			jails[i] = jailJSON{js: js, bans: sliceBans(js.Bans), past: sliceBans(js.Past)}
		}
	}
	var hist []histJSON
	if len(s.History) > 0 {
		hist = []histJSON{{all: s.History}}
	}
	encodeState(o, s.Version, jails, hist)
}

// jailJSON is a jail to encode: its JailState, with its bans from wherever they are kept (the
// State's slices, or a Frozen's ledgers).
type jailJSON struct {
	js         *JailState
	bans, past banList
}

// banList is a sorted list of bans to encode.
type banList interface {
	len() int
	at(i int) *Ban
}

type sliceBans []Ban

func (s sliceBans) len() int      { return len(s) }
func (s sliceBans) at(i int) *Ban { return &s[i] }

type itemBans []ledgerItem[*Ban]

func (s itemBans) len() int      { return len(s) }
func (s itemBans) at(i int) *Ban { return s[i].v }

// histJSON is part of the history to encode: a State's whole History (all), or one jail's records.
type histJSON struct {
	all  []HistoryRec
	jail string
	recs []ledgerItem[record]
}

func (h *histJSON) len() int { return len(h.all) + len(h.recs) }

func (h *histJSON) at(i int) HistoryRec {
	if h.all != nil {
		return h.all[i]
	}
	r := h.recs[i]
	return HistoryRec{Jail: h.jail, Prefix: r.p, Count: r.v.Count(), Last: r.v.Last()}
}

// encodeState encodes a State: jails nil is "null", as encoding/json writes a nil slice; the
// history's parts are written one after the other, and not at all when they are empty.
func encodeState(o *jsonOut, version int, jails []jailJSON, hist []histJSON) {
	b := append(o.b, `{"version":`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `,"jails":`...)
	if jails == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range jails {
			if i > 0 {
				b = append(b, ',')
			}
			o.b = b
			jails[i].encode(o)
			b = o.b
		}
		b = append(b, ']')
	}
	n := 0
	for i := range hist {
		n += hist[i].len()
	}
	if n > 0 {
		b = append(b, `,"history":[`...)
		first := true
		for k := range hist {
			for i := range hist[k].len() {
				h := hist[k].at(i)
				if !first {
					b = append(b, ',')
				}
				first = false
				b = append(b, `{"jail":`...)
				b = AppendJSONString(b, h.Jail)
				b = append(b, `,"prefix":`...)
				b = appendPrefix(b, h.Prefix)
				b = append(b, `,"count":`...)
				b = strconv.AppendInt(b, int64(h.Count), 10)
				b = append(b, `,"last":`...)
				b = AppendJSONTime(b, h.Last)
				b = append(b, '}')
				o.b = b
				o.spill()
				b = o.b
			}
		}
		b = append(b, ']')
	}
	o.b = append(b, '}')
}

func (jj *jailJSON) encode(o *jsonOut) {
	js := jj.js
	b := append(o.b, `{"name":`...)
	b = AppendJSONString(b, js.Name)
	o.b = b
	encodeWindows(o, "windows", js.Windows)
	encodeWindows(o, "nets", js.Nets)
	b = o.b
	if jj.bans.len() > 0 {
		b = append(b, `,"bans":`...)
		o.b = b
		encodeBans(o, jj.bans)
		b = o.b
	}
	if jj.past.len() > 0 {
		b = append(b, `,"past":`...)
		o.b = b
		encodeBans(o, jj.past)
		b = o.b
	}
	if len(js.Ended) > 0 {
		b = append(b, `,"ended":[`...)
		for i := range js.Ended {
			if i > 0 {
				b = append(b, ',')
			}
			e := &js.Ended[i]
			b = appendBanFields(b, &e.Ban)
			b = append(b, `,"Ended":`...)
			b = AppendJSONTime(b, e.Ended)
			b = append(b, `,"Reason":`...)
			b = AppendJSONString(b, e.Reason)
			b = append(b, '}')
			o.b = b
			o.spill()
			b = o.b
		}
		b = append(b, ']')
	}
	if len(js.Forgiven) > 0 {
		b = append(b, `,"forgiven":[`...)
		for i, f := range js.Forgiven {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"prefix":`...)
			b = appendPrefix(b, f.Prefix)
			b = append(b, `,"at":`...)
			b = AppendJSONTime(b, f.At)
			b = append(b, '}')
			o.b = b
			o.spill()
			b = o.b
		}
		b = append(b, ']')
	}
	if len(js.Trusted) > 0 {
		b = append(b, `,"trusted":`...)
		o.b = b
		encodeTrusted(o, js.Trusted)
		b = o.b
	}
	if len(js.Conns) > 0 {
		b = append(b, `,"conns":`...)
		o.b = b
		encodeConns(o, js.Conns)
		b = o.b
	}
	b = append(b, `,"last_entry":`...)
	b = AppendJSONTime(b, js.LastEntry)
	b = append(b, `,"total_failed":`...)
	b = strconv.AppendUint(b, js.TotalFailed, 10)
	b = append(b, `,"total_banned":`...)
	b = strconv.AppendUint(b, js.TotalBanned, 10)
	o.b = append(b, '}')
}

// encodeWindows appends `,"name":[...]` for ws, or nothing when it is empty.
func encodeWindows(o *jsonOut, name string, ws []WindowState) {
	if len(ws) == 0 {
		return
	}
	b := append(o.b, `,"`...)
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, w := range ws {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"prefix":`...)
		b = appendPrefix(b, w.Prefix)
		b = append(b, `,"times":`...)
		if w.Times == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for k, t := range w.Times {
				if k > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, t, 10)
			}
			b = append(b, ']')
		}
		if len(w.PIDs) > 0 {
			b = append(b, `,"pids":[`...)
			for k, pid := range w.PIDs {
				if k > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, int64(pid), 10)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
		o.b = b
		o.spill()
		b = o.b
	}
	o.b = append(b, ']')
}

func encodeBans(o *jsonOut, bans banList) {
	b := append(o.b, '[')
	for i := range bans.len() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendBanFields(b, bans.at(i))
		b = append(b, '}')
		o.b = b
		o.spill()
		b = o.b
	}
	o.b = append(b, ']')
}

// appendBanFields appends ban as encoding/json encodes a Ban, without the closing brace (an EndedBan
// has fields after them).
func appendBanFields(b []byte, ban *Ban) []byte {
	b = append(b, `{"Jail":`...)
	b = AppendJSONString(b, ban.Jail)
	b = append(b, `,"Prefix":`...)
	b = appendPrefix(b, ban.Prefix)
	b = append(b, `,"BannedAt":`...)
	b = AppendJSONTime(b, ban.BannedAt)
	b = append(b, `,"Expires":`...)
	b = AppendJSONTime(b, ban.Expires)
	b = append(b, `,"Count":`...)
	b = strconv.AppendInt(b, int64(ban.Count), 10)
	if ban.Origin != (events.Origin{}) {
		b = append(b, `,"Origin":`...)
		b = appendOrigin(b, ban.Origin)
	}
	if ban.Rule != "" {
		b = append(b, `,"Rule":`...)
		b = AppendJSONString(b, ban.Rule)
	}
	if len(ban.bare)+len(ban.Entries) > 0 {
		b = append(b, `,"Entries":[`...)
		for k, e := range ban.bare {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendEntry(b, e.entry())
		}
		for k, e := range ban.Entries {
			if k+len(ban.bare) > 0 {
				b = append(b, ',')
			}
			b = appendEntry(b, e)
		}
		b = append(b, ']')
	}
	return b
}

// appendOrigin appends o as encoding/json encodes events.Origin.
func appendOrigin(b []byte, o events.Origin) []byte {
	b = append(b, `{"kind":`...)
	b = AppendJSONString(b, o.Kind.String())
	if o.UID != 0 {
		b = append(b, `,"uid":`...)
		b = strconv.AppendUint(b, uint64(o.UID), 10)
	}
	if o.Peer != "" {
		b = append(b, `,"peer":`...)
		b = AppendJSONString(b, o.Peer)
	}
	return append(b, '}')
}

// appendEntry appends e as encoding/json encodes events.Entry.
func appendEntry(b []byte, e events.Entry) []byte {
	b = append(b, `{"time":`...)
	b = AppendJSONTime(b, e.Time)
	if e.Cursor != "" {
		b = append(b, `,"cursor":`...)
		b = AppendJSONString(b, e.Cursor)
	}
	b = append(b, `,"message":`...)
	b = AppendJSONString(b, e.Message)
	if e.PID != 0 {
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(e.PID), 10)
	}
	return append(b, '}')
}

func appendPrefix(b []byte, p netip.Prefix) []byte {
	b = append(b, '"')
	if p.IsValid() {
		b = p.AppendTo(b)
	}
	return append(b, '"')
}

// AppendJSONTime appends t as time.Time's MarshalJSON writes it (RFC 3339 with nanoseconds).
func AppendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		// Out of MarshalJSON's range (it fails); never in a state, but stay valid JSON.
		return append(b, `"0001-01-01T00:00:00Z"`...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json escapes it.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			// Rare (names are validated): let encoding/json do the escaping.
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
