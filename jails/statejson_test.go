package jails

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// TestAppendJSONMatchesEncodingJSON: the hand-written encoder writes exactly the bytes of
// encoding/json, for states of every shape.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("x", 3600+1800), time.FixedZone("y", -7*3600)}
	tm := func() time.Time {
		if rng.IntN(10) == 0 {
			return time.Time{}
		}
		return time.Unix(1_700_000_000+rng.Int64N(100_000_000), rng.Int64N(1e9)*int64(rng.IntN(2))).In(zones[rng.IntN(3)])
	}
	pfx := func() netip.Prefix {
		switch rng.IntN(4) {
		case 0:
			return netip.Prefix{}
		case 1:
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(256))}), 32)
		case 2:
			return netip.MustParsePrefix("2001:db8::/64")
		}
		return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(256))}), 128)
	}
	names := []string{"sshd", "nginx-auth", "a_b", `we"ird`, "tab\there", "<x>&", "ünï"}
	name := func() string { return names[rng.IntN(len(names))] }
	bans := func() []Ban {
		n := rng.IntN(3)
		if n == 0 && rng.IntN(2) == 0 {
			return nil
		}
		out := make([]Ban, n)
		for i := range out {
			out[i] = Ban{Jail: name(), Prefix: pfx(), BannedAt: tm(), Expires: tm(), Count: rng.IntN(5) - 1}
			switch rng.IntN(4) {
			case 1:
				out[i].Origin = events.Origin{Kind: events.OriginManual, UID: uint32(rng.IntN(2) * 1000)}
			case 2:
				out[i].Origin = events.Origin{Kind: events.OriginPeer, Peer: name()}
			case 3:
				out[i].Origin = events.Origin{Kind: events.OriginRestored}
			}
			if rng.IntN(2) == 0 {
				out[i].Rule = name()
			}
			for e := rng.IntN(3); e > 0; e-- {
				ent := events.Entry{Time: tm(), Message: name(), PID: rng.IntN(3) * 4242}
				if rng.IntN(2) == 0 {
					ent.Cursor = "s=0123;i=" + name()
				}
				out[i].Entries = append(out[i].Entries, ent)
			}
		}
		return out
	}
	for i := 0; i < 500; i++ {
		s := State{Version: rng.IntN(3)}
		if rng.IntN(5) > 0 {
			s.Jails = []JailState{}
			for k := rng.IntN(3); k > 0; k-- {
				js := JailState{Name: name(), Bans: bans(), Past: bans(), LastEntry: tm(),
					TotalFailed: rng.Uint64(), TotalBanned: uint64(rng.IntN(10))}
				for _, b := range bans() {
					js.Ended = append(js.Ended, EndedBan{Ban: b, Ended: tm(), Reason: name()})
				}
				for w := rng.IntN(3); w > 0; w-- {
					ws := WindowState{Prefix: pfx()}
					if rng.IntN(3) > 0 {
						ws.Times = []int64{}
						for x := rng.IntN(4); x > 0; x-- {
							ws.Times = append(ws.Times, rng.Int64()-rng.Int64())
						}
						if rng.IntN(2) == 0 {
							for range ws.Times {
								ws.PIDs = append(ws.PIDs, int32(rng.IntN(70000)))
							}
						}
					}
					js.Windows = append(js.Windows, ws)
				}
				for f := rng.IntN(2); f > 0; f-- {
					js.Forgiven = append(js.Forgiven, ForgivenState{Prefix: pfx(), At: tm()})
				}
				for c := rng.IntN(3); c > 0; c-- {
					cs := ConnState{PID: rng.IntN(3) * rng.IntN(1<<22), Port: rng.IntN(2) * rng.IntN(65536), Last: rng.Int64() - rng.Int64(),
						User: uint64(rng.IntN(2)) * rng.Uint64(), Pending: []string{"", RuleAccountLocked, `"q"`}[rng.IntN(3)], Flags: rng.IntN(64)}
					if p := pfx(); p.IsValid() {
						cs.Addr = p.Addr()
					}
					js.Conns = append(js.Conns, cs)
				}
				s.Jails = append(s.Jails, js)
			}
		}
		for h := rng.IntN(3); h > 0; h-- {
			s.History = append(s.History, HistoryRec{Jail: name(), Prefix: pfx(), Count: rng.IntN(9), Last: tm()})
		}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("state %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestWriteJSONChunks: WriteJSON writes, a chunk at a time, what AppendJSON appends, and returns the
// writer's error.
func TestWriteJSONChunks(t *testing.T) {
	s := State{Version: StateVersion, Jails: []JailState{{Name: "sshd"}}}
	at := time.Unix(1_800_000_000, 0).UTC()
	for i := 0; i < 3000; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
		s.Jails[0].Windows = append(s.Jails[0].Windows, WindowState{Prefix: p, Times: []int64{1, 2}})
		s.Jails[0].Past = append(s.Jails[0].Past, Ban{Jail: "sshd", Prefix: p, BannedAt: at, Expires: at, Count: 1})
		s.Jails[0].Forgiven = append(s.Jails[0].Forgiven, ForgivenState{Prefix: p, At: at})
		s.History = append(s.History, HistoryRec{Jail: "sshd", Prefix: p, Count: 1, Last: at})
	}
	w := &countingWriter{}
	if err := s.WriteJSON(w); err != nil {
		t.Fatal(err)
	}
	if want := s.AppendJSON(nil); !bytes.Equal(w.buf.Bytes(), want) {
		t.Fatalf("WriteJSON wrote %d bytes that differ from AppendJSON's %d", w.buf.Len(), len(want))
	}
	if w.writes < 4 {
		t.Errorf("%d bytes written in %d writes, want chunks", w.buf.Len(), w.writes)
	}
	if err := s.WriteJSON(failingWriter{}); err == nil {
		t.Error("WriteJSON to a failing writer: no error")
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.buf.Write(p) }

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

func BenchmarkStateJSON(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := NewEngine(nopFirewallB{}, nopEvents{}, clock.now, WithSelfAddrs(func() ([]netip.Prefix, error) { return nil, nil }))
	f, _ := SSHD("normal")
	e.SetJail("sshd", f, Settings{BanTime: time.Minute, FindTime: 30 * 24 * time.Hour, MaxRetry: 5})
	for i := 0; i < 20000; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		for k := 0; k < 6; k++ {
			e.Handle("sshd", events.Entry{Time: clock.t.Add(-time.Hour), Message: "Failed password for root from " + a.String() + " port 22 ssh2"})
		}
	}
	s := e.Snapshot()
	b.Run("Snapshot", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			e.Snapshot()
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			json.Marshal(s)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf = s.AppendJSON(buf[:0])
		}
	})
}

type nopFirewallB struct{}

func (nopFirewallB) Ban(string, netip.Prefix, time.Duration) error { return nil }
func (nopFirewallB) Unban(string, netip.Prefix) error              { return nil }

// TestRestoreVersion1: a state written before bans had origins and entries, and windows entries,
// restores: its bans as the jail's own, its failures with no PID, and they still count.
func TestRestoreVersion1(t *testing.T) {
	v1 := `{"version":1,"jails":[{"name":"sshd",
		"windows":[{"prefix":"192.0.2.70/32","times":[` + fmt.Sprint(t0.Add(-time.Minute).UnixNano()) + `,` + fmt.Sprint(t0.Add(-30*time.Second).UnixNano()) + `]}],
		"bans":[{"Jail":"sshd","Prefix":"192.0.2.71/32","BannedAt":"2026-11-24T09:55:00Z","Expires":"2026-11-24T10:05:00Z","Count":1}],
		"last_entry":"2026-11-24T09:59:30Z","total_failed":5,"total_banned":1}]}`
	var st State
	if err := json.Unmarshal([]byte(v1), &st); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, settings()) // maxretry 3
	if err := h.e.Restore(st); err != nil {
		t.Fatal(err)
	}
	bans := h.e.Bans("sshd")
	if len(bans) != 1 || bans[0].Origin != (events.Origin{}) || len(bans[0].Entries) != 0 {
		t.Fatalf("bans %+v", bans)
	}
	h.fail("192.0.2.70", 0)
	bans = h.e.Bans("sshd")
	if e := bans[0].AllEntries(); len(bans) != 2 || len(e) != 3 || e[0].PID != 0 || e[2].Message == "" {
		t.Fatalf("after the third failure: bans %+v", bans)
	}
	if got := h.e.Snapshot(); got.Version != StateVersion {
		t.Errorf("snapshot version %d, want %d", got.Version, StateVersion)
	}
}
