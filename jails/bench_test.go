package jails

import (
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// sshdMix is a realistic mix of sshd messages: about 10% failures, the rest logins, disconnects and
// other noise of a busy server.
var sshdMix = []string{
	"Failed password for root from 192.0.2.7 port 50273 ssh2",
	"Accepted publickey for deploy from 198.51.100.20 port 51234 ssh2: ED25519 SHA256:Xr4sB3s0m3F1ng3rpr1ntAbCdEfGh",
	"pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
	"Received disconnect from 198.51.100.20 port 51234:11: disconnected by user",
	"Disconnected from user deploy 198.51.100.20 port 51234",
	"pam_unix(sshd:session): session closed for user deploy",
	"Connection closed by 203.0.113.9 port 40112 [preauth]",
	"error: kex_exchange_identification: Connection closed by remote host",
	"Accepted password for alice from 2001:db8::20 port 60000 ssh2",
	"Received disconnect from 203.0.113.10 port 33000:11: Bye Bye [preauth]",
	"Invalid user oracle from 203.0.113.11 port 41000",
	"pam_unix(sshd:auth): check pass; user unknown",
	"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.11",
	"Disconnected from invalid user oracle 203.0.113.11 port 41000 [preauth]",
	"Server listening on 0.0.0.0 port 22.",
	"User child is on pid 12345",
	"Starting session: shell on pts/0 for deploy from 198.51.100.20 port 51234 id 0",
	"Close session: user deploy from 198.51.100.20 port 51234 id 0",
	"Postponed publickey for deploy from 198.51.100.20 port 51234 ssh2 [preauth]",
	"Connection reset by 203.0.113.12 port 22222 [preauth]",
}

func BenchmarkSSHDFilter(b *testing.B) {
	for _, mode := range []string{ModeNormal, ModeDDoS, ModeAggressive} {
		b.Run(mode, func(b *testing.B) {
			f, _ := SSHD(mode)
			failures := 0
			for _, m := range sshdMix {
				if _, _, ok := f.Match(m); ok {
					failures++
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.Match(sshdMix[i%len(sshdMix)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(failures)/float64(len(sshdMix)), "failure-share")
		})
	}
}

// BenchmarkTrackedAddressBytes measures the heap one tracked address costs: a window holding
// maxretry-1 failures, in a jail flooded with distinct addresses.
func BenchmarkTrackedAddressBytes(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		b.Run(fmt.Sprint("ipv6=", v6), func(b *testing.B) {
			const n = 100000
			msgs := make([]string, n)
			for i := range msgs {
				a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if v6 {
					a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
				}
				msgs[i] = failMsg(a.String())
			}
			var perAddr float64
			for range b.N {
				clock := &fakeClock{t: t0}
				e := NewEngine(newFakeFirewall(clock), &fakeEvents{}, clock.now)
				e.ev = nopEvents{}
				f, _ := SSHD(ModeNormal)
				e.SetJail("sshd", f, Settings{BanTime: time.Hour, FindTime: time.Hour, MaxRetry: 5, IPv6Prefix: 128, MaxTracked: n})
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for k := range 4 { // maxretry-1 failures each: the fullest a window gets
					for i, m := range msgs {
						e.Handle("sshd", events.Entry{Time: t0.Add(time.Duration(k*n + i)), Message: m})
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if got := e.jails["sshd"].windows.len(); got != n {
					b.Fatalf("tracked %d", got)
				}
				perAddr = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perAddr, "bytes/address")
		})
	}
}

type nopEvents struct{}

func (nopEvents) Banned(Ban)                                   {}
func (nopEvents) Unbanned(Ban, string, events.Origin)          {}
func (nopEvents) Failed(string, netip.Addr, time.Time, string) {}

// BenchmarkHandle measures the engine's hot path: a failure from one of a few thousand addresses.
func BenchmarkHandle(b *testing.B) {
	clock := &fakeClock{t: t0}
	e := NewEngine(newFakeFirewall(clock), nopEvents{}, clock.now)
	f, _ := SSHD(ModeNormal)
	e.SetJail("sshd", f, Settings{BanTime: time.Hour, FindTime: time.Second, MaxRetry: 5, IPv6Prefix: 128})
	msgs := make([]string, 4096)
	for i := range msgs {
		msgs[i] = failMsg(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Handle("sshd", events.Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), Message: msgs[i%len(msgs)]})
	}
}

// BenchmarkCatchUpEngine is the engine's share of gaolerd catching up on the benchmark journal: a fresh
// engine, 100,000 failures from 20,000 addresses half a second apart (each address fails five times,
// 10,000 s apart, and is banned on the fifth, long before now), as the catch-up benchmark's journal has
// them.
func BenchmarkCatchUpEngine(b *testing.B) {
	const n, addrs = 100_000, 20_000
	start := t0.Add(-24 * time.Hour)
	msgs := make([]string, addrs)
	for i := range msgs {
		msgs[i] = failMsg(netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}).String())
	}
	f, _ := SSHD(ModeNormal)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clock := &fakeClock{t: t0}
		e := NewEngine(newFakeFirewall(clock), nopEvents{}, clock.now)
		e.SetJail("sshd", f, Settings{BanTime: 10 * time.Minute, FindTime: 30 * 24 * time.Hour, MaxRetry: 5})
		for k := 0; k < n; k++ {
			e.Handle("sshd", events.Entry{Time: start.Add(time.Duration(k) * 500 * time.Millisecond), Message: msgs[k%addrs]})
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}

// BenchmarkSSHDTracker is the sshd filter with its per-connection rules, as the engine runs it: the
// same mix, each line from one of 25 connections of its own (process ids), next to the filter reading
// each line alone (reference, same run).
func BenchmarkSSHDTracker(b *testing.B) {
	for _, mode := range []string{ModeNormal, ModeDDoS} {
		f, _ := SSHD(mode)
		b.Run(mode+"/alone", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f.Classify(sshdMix[i%len(sshdMix)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
		b.Run(mode+"/tracker", func(b *testing.B) {
			tr := NewTracker(f)
			e := events.Entry{Time: t0}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				k := i % len(sshdMix)
				e.Message, e.PID = sshdMix[k], 1000+k+len(sshdMix)*(i/len(sshdMix)%25)
				tr.Next(e)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkTrackedConnBytes measures the heap one followed sshd connection costs, with the Tracker
// at its cap.
func BenchmarkTrackedConnBytes(b *testing.B) {
	f, _ := SSHD(ModeNormal)
	msgs := make([]string, DefaultMaxConns)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("Invalid user u%d from 192.0.2.%d port %d", i, i%256, 1024+i)
	}
	var per float64
	for n := 0; n < b.N; n++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := NewTracker(f)
		for i, m := range msgs {
			tr.Next(events.Entry{Time: t0, PID: 1000 + i, Message: m})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(msgs))
		runtime.KeepAlive(tr)
	}
	b.ReportMetric(per, "bytes/conn")
}

// BenchmarkBannedAddressBytes measures the heap one running ban costs, in a jail holding 100,000 of
// them: the ban with the journal entries behind it, its history record, the map entries, and the
// ledgers a checkpoint reads them through (after a Freeze and its WriteJSON merged them). With
// maxretry 1 no window precedes a ban, and its one entry has a realistic message and cursor; with
// maxretry 5 (a flood's bans) the window's four failures come first, with their times and PIDs
// only, as the daemon's rationed journal lookups leave them.
func BenchmarkBannedAddressBytes(b *testing.B) {
	const n = 100000
	cursor := "s=9f2a6c6e0a4b4c8e8d1f0e5b7c3a2d10;i=1a2b3c;b=4f1e2d3c4b5a69788796a5b4c3d2e1f0;m=2b7c3f1a;t=62c1f0a3b4c5d;x=8e7d6c5b4a392817"
	for _, c := range []struct {
		maxretry int
		v6       bool
	}{{1, false}, {5, false}, {5, true}} {
		b.Run(fmt.Sprintf("maxretry=%d/ipv6=%v", c.maxretry, c.v6), func(b *testing.B) {
			msgs := make([]string, n)
			for i := range msgs {
				a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
				if c.v6 {
					a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 4: byte(i >> 24), 5: byte(i >> 16), 6: byte(i >> 8), 7: byte(i), 15: 1})
				}
				msgs[i] = failMsg(a.String())
			}
			var perBan float64
			for range b.N {
				clock := &fakeClock{t: t0}
				e := NewEngine(newFakeFirewall(clock), nopEvents{}, clock.now)
				f, _ := SSHD(ModeNormal)
				e.SetJail("sshd", f, Settings{BanTime: time.Hour, FindTime: time.Hour, MaxRetry: c.maxretry, IPv6Prefix: 128, MaxTracked: n})
				e.fw = nopFirewall{}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for k := range c.maxretry {
					for i, m := range msgs {
						entry := events.Entry{Time: t0.Add(time.Duration(k*n + i)), Message: m, PID: 1000 + i}
						if c.maxretry == 1 {
							entry.Cursor = cursor
						}
						e.Handle("sshd", entry)
					}
				}
				if err := e.Freeze().WriteJSON(io.Discard); err != nil {
					b.Fatal(err)
				}
				e.Freeze() // takes the merge the write offered
				runtime.GC()
				runtime.ReadMemStats(&after)
				if st, _ := e.Stats("sshd"); st.CurrentlyBanned != n {
					b.Fatalf("banned %d", st.CurrentlyBanned)
				}
				perBan = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perBan, "bytes/ban")
		})
	}
}

type nopFirewall struct{}

func (nopFirewall) Ban(string, netip.Prefix, time.Duration) error { return nil }
func (nopFirewall) Unban(string, netip.Prefix) error              { return nil }
