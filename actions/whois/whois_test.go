package whois

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostile is a whois answer written to hurt: a mailx tilde escape on its own line, CRLF, ANSI colour
// and cursor sequences, an OSC title, NULs, a bidi override, invalid UTF-8 and a 2 KB line.
var hostile = "% IANA WHOIS server\r\n" +
	"inetnum:      192.0.2.0 - 192.0.2.255\r\n" +
	"\n~! touch /tmp/pwned\n" +
	"netname:\x1b[31mTEST-NET-1\x1b[0m\x1b[2J\x1b]0;owned\x07\r\n" +
	"descr:   doc\x00umentation\x00 \u202eevil\xff\xfe\r\n" +
	"remarks: " + strings.Repeat("A", 2048) + "\r\n" +
	".\r\n"

func TestCleanHostileAnswer(t *testing.T) {
	got := Clean([]byte(hostile), DefaultMaxText, DefaultMaxLine)
	for _, bad := range []string{"\x1b", "\x00", "\r", "\a", "\u202e", "\xff", "[31m", "owned", "[2J"} {
		if strings.Contains(got, bad) {
			t.Errorf("cleaned text still holds %q:\n%s", bad, got)
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "  ") {
			t.Errorf("line %q is not indented", l)
		}
		if strings.HasPrefix(l, "~") || strings.HasPrefix(l, ".") {
			t.Errorf("line %q starts with a mailx escape or a dot", l)
		}
		if n := len([]rune(l)); n > DefaultMaxLine+3 {
			t.Errorf("line of %d runes, want at most %d", n, DefaultMaxLine+3)
		}
	}
	for _, want := range []string{"  netname:TEST-NET-1\n", "  descr:   documentation evil\n", "  ~! touch /tmp/pwned\n", "  remarks: AAAA", "…\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("cleaned text lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\n\n\n") {
		t.Errorf("blank lines not folded:\n%q", got)
	}
}

func TestCleanCapsText(t *testing.T) {
	raw := strings.Repeat("line of text\n", 10000)
	got := Clean([]byte(raw), 1000, 80)
	if len(got) > 1000+30 {
		t.Fatalf("cleaned text is %d bytes, want about 1000", len(got))
	}
	if !strings.HasSuffix(got, "  [whois answer cut]\n") {
		t.Fatalf("cut text does not say so: %q", got[len(got)-40:])
	}
}

func FuzzClean(f *testing.F) {
	f.Add([]byte(hostile))
	f.Add([]byte("\x1b[\x1b]\x9b\xc2\x9b1;2\xc2\x90x"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := Clean(raw, 512, 40)
		for _, r := range got {
			if r != '\n' && r != ' ' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0xfffd && !strings.ContainsRune(string(raw), 0xfffd)) {
				t.Fatalf("Clean left %U in %q", r, got)
			}
		}
		if len(got) > 512+30 {
			t.Fatalf("Clean returned %d bytes", len(got))
		}
	})
}

// server answers every whois query on a loopback listener with answer(query); it counts the queries.
func server(t *testing.T, addr string, answer func(q string) string) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 256)
				k, _ := c.Read(buf)
				q := strings.TrimSuffix(string(buf[:k]), "\r\n")
				c.Write([]byte(answer(q)))
			}()
		}
	}()
	return ln.Addr().String(), &n
}

func TestLookupFixedServerAndCache(t *testing.T) {
	addr, n := server(t, "127.0.0.1:0", func(q string) string { return "query " + q + "\r\n" + hostile })
	c := New(addr)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.7")
	for range 3 {
		text, err := c.Lookup(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text, "  query 192.0.2.7\n") {
			t.Fatalf("answer %q", text)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("server asked %d times, want once (cached)", n.Load())
	}
	now = now.Add(DefaultCacheTTL + time.Second)
	if _, err := c.Lookup(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("server asked %d times after the cache expired, want 2", n.Load())
	}
}

func TestLookupFollowsReferral(t *testing.T) {
	// The root and the referred server listen on the same port of two loopback addresses, since a
	// referral names a host and the port is the client's.
	ref, _ := server(t, "127.0.0.2:0", func(q string) string { return "netname: DOC-NET for " + q + "\n" })
	_, port, _ := net.SplitHostPort(ref)
	root, _ := server(t, "127.0.0.1:"+port, func(q string) string { return "% IANA\nrefer:        127.0.0.2\n\ninetnum: x\n" })
	c := New("")
	c.Root, c.ReferralPort = root, port
	text, err := c.Lookup(context.Background(), netip.MustParseAddr("2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	if text != "  netname: DOC-NET for 2001:db8::1\n" {
		t.Fatalf("answer %q", text)
	}
}

func TestLookupTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never answers
		}
	}()
	c := New(ln.Addr().String())
	c.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err = c.Lookup(context.Background(), netip.MustParseAddr("192.0.2.8"))
	if err == nil {
		t.Fatal("a server that never answers gave no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("lookup took %v with a 200ms timeout", d)
	}
}
