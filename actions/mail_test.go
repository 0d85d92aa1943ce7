package actions

import (
	"context"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/actions/whois"
	"github.com/gaoler/gaoler/events"
	"github.com/gaoler/gaoler/internal/testenv"
)

// smtpd starts Debian's aiosmtpd on a loopback port, delivering into a fresh Maildir, and returns its
// address and the Maildir.
func smtpd(t *testing.T) (addr, maildir string) {
	t.Helper()
	_, err := os.Stat("/usr/lib/python3/dist-packages/aiosmtpd")
	testenv.Require(t, err == nil, "needs python3-aiosmtpd (scripts/deps.sh installs it)")
	maildir = filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for try := 0; try < 5; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
		cmd := exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", maildir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			select {
			case <-exited:
				deadline = time.Time{} // the port was taken: try another
				continue
			default:
			}
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return addr, maildir
			}
		}
	}
	t.Fatal("aiosmtpd did not start")
	return "", ""
}

// mails waits until n mails are in maildir/new and returns them, parsed, oldest first.
func mails(t *testing.T, maildir string, n int) []*mail.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		if len(files) >= n {
			time.Sleep(200 * time.Millisecond) // fail on a mail too many
			files, _ = filepath.Glob(filepath.Join(maildir, "new", "*"))
			if len(files) != n {
				t.Fatalf("%d mails, want %d", len(files), n)
			}
			var out []*mail.Message
			sort.Slice(files, func(i, j int) bool {
				a, _ := os.Stat(files[i])
				b, _ := os.Stat(files[j])
				return a.ModTime().Before(b.ModTime())
			})
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for i, l := range strings.Split(string(raw), "\n") {
					if len(l) > 998 {
						t.Errorf("%s: line %d is %d bytes", f, i+1, len(l))
					}
				}
				m, err := mail.ReadMessage(strings.NewReader(string(raw)))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				out = append(out, m)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails after 30s, want %d", len(files), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func body(t *testing.T, m *mail.Message) string {
	t.Helper()
	b := new(strings.Builder)
	if _, err := fmt.Fprint(b, readBody(m)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func readBody(m *mail.Message) string {
	var r interface{ Read([]byte) (int, error) } = m.Body
	if m.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
		r = quotedprintable.NewReader(m.Body)
	}
	raw, _ := readAllReader(r)
	return strings.ReplaceAll(string(raw), "\r\n", "\n")
}

// hostileWhois is a whois answer written to hurt the reader of the mail.
var hostileWhois = "% whois\r\n" +
	"inetnum:        192.0.2.0 - 192.0.2.255\r\n" +
	"\n~! touch /tmp/gaoler-whois-pwned\n" +
	"netname:\x1b[31mTEST-NET-1\x1b[0m\x1b]0;title\x07\r\n" +
	"descr:  doc\x00umentation\r\n" +
	"remarks: " + strings.Repeat("B", 2048) + "\r\n"

func whoisServer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 256))
				c.Write([]byte(answer))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestMailThroughRealSMTPServer(t *testing.T) {
	addr, maildir := smtpd(t)
	m := &Mail{
		Name: "mail", From: "gaoler@host.example.org", To: []string{"admin@example.org", "ops@example.org"},
		Host: "host.example.org", Sender: &SMTP{Addr: addr, Hello: "host.example.org"},
		Whois: whois.New(whoisServer(t, hostileWhois)), Lines: true,
	}
	ev := banEvent("192.0.2.7")
	ev.Entries[1].Message += "\r\nBcc: victim@example.net\r\n\r\n.\r\nMAIL FROM:<x@y>"
	res, err := m.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Note != "mailed to admin@example.org, ops@example.org" {
		t.Fatalf("note %q", res.Note)
	}
	msg := mails(t, maildir, 1)[0]
	for k, want := range map[string]string{
		"Subject": "[gaoler] sshd: banned 192.0.2.7 on host.example.org",
		"From":    "gaoler@host.example.org",
		"To":      "admin@example.org, ops@example.org",
		"Bcc":     "",
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasSuffix(id, "@host.example.org>") {
		t.Errorf("Message-ID %q", id)
	}
	text := body(t, msg)
	for _, want := range []string{
		"gaolerd banned 192.0.2.7 in jail sshd on host.example.org.",
		"  Rule:       invalid-user\n",
		"  2026-12-03 09:59:58 UTC  Invalid user " + strings.ReplaceAll(hostileUser, "\n", "") + " from 192.0.2.7 port 22\n",
		"Whois for 192.0.2.7:",
		"\n  netname:TEST-NET-1\n",
		"\n  descr:  documentation\n",
		"\n  ~! touch /tmp/gaoler-whois-pwned\n",
		"\n  remarks: BBBB",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"\x1b", "\x00", "title", "\nBcc:", "\n~!", "\n.\n"} {
		if strings.Contains(text, bad) {
			t.Errorf("body holds %q:\n%s", bad, text)
		}
	}
}

// manualTimer is a digest period's end that the test decides.
type manualTimer struct{ ch chan time.Time }

func (m *manualTimer) after(time.Duration) <-chan time.Time { return m.ch }

func TestMailDigestOfFiftyBans(t *testing.T) {
	addr, maildir := smtpd(t)
	timer := &manualTimer{ch: make(chan time.Time, 1)}
	log := &recordingLog{}
	rep := &Reporter{Log: log}
	m := &Mail{
		Name: "mail", From: "root@host.example.org", To: []string{"admin@example.org"},
		Host: "host.example.org", Sender: &SMTP{Addr: addr, Hello: "host.example.org"},
		Lines: true, Digest: time.Minute, Reporter: rep, After: timer.after,
	}
	set := NewSet(rep)
	set.Update([]Spec{{Name: "mail", Type: "mail", Events: map[events.Kind]bool{events.Ban: true}, Jails: map[string]int{"sshd": 5}, Action: m}})
	for i := 1; i <= 50; i++ {
		ev := banEvent(fmt.Sprintf("192.0.2.%d", i))
		ev.BannedAt = ev.BannedAt.Add(time.Duration(i) * 50 * time.Millisecond)
		set.Handle(ev)
	}
	first := mails(t, maildir, 1)[0]
	if s := first.Header.Get("Subject"); s != "[gaoler] sshd: banned 192.0.2.1 on host.example.org" {
		t.Fatalf("first mail: %q", s)
	}
	// Wait until the other 49 are held, then end the period.
	log.wait(t, events.MsgActionSent, 1)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		m.mu.Lock()
		n := len(m.period)
		m.mu.Unlock()
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bans in the period, want 50", n)
		}
	}
	timer.ch <- time.Now()
	all := mails(t, maildir, 2)
	digest := all[1]
	if s := digest.Header.Get("Subject"); s != "[gaoler] sshd: 50 bans on host.example.org" {
		t.Fatalf("digest subject %q", s)
	}
	text := body(t, digest)
	for i := 1; i <= 50; i++ {
		a := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i)).String()
		if !strings.Contains(text, " sshd       "+a+" ") {
			t.Errorf("digest does not list %s:\n%s", a, text)
		}
	}
	sent := log.wait(t, events.MsgActionSent, 2)
	if !strings.Contains(sent[1].msg, "digest of 50 bans mailed to admin@example.org") {
		t.Fatalf("digest entry %q", sent[1].msg)
	}
	// The attack is over: the next period ends with nothing held, and the next ban is mailed alone.
	timer.ch <- time.Now()
	set.Close()
	mails(t, maildir, 2)
}
