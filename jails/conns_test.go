package jails

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gaoler/gaoler/events"
)

// connLine is one entry of a connection test: the sshd process that wrote it, and its message.
type connLine struct {
	pid int
	msg string
}

// track runs lines through a fresh Tracker of the sshd filter in mode, a second apart, and returns
// what each became: "failure RULE ADDR", "repeat", "login USER ADDR" or "-".
func track(t *testing.T, mode string, lines []connLine) []string {
	t.Helper()
	f, err := SSHD(mode)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(f)
	var out []string
	for i, l := range lines {
		r := tr.Next(events.Entry{Time: t0.Add(time.Duration(i) * time.Second), Message: l.msg, PID: l.pid})
		switch r.Kind {
		case Failure:
			out = append(out, fmt.Sprintf("failure %s %s", r.Rule, r.Addr))
		case Login:
			out = append(out, fmt.Sprintf("login %s %s", r.User, r.Addr))
		case Repeat:
			out = append(out, "repeat")
		default:
			out = append(out, "-")
		}
	}
	return out
}

func TestTrackerCountsOnce(t *testing.T) {
	const (
		h  = "192.0.2.7"
		h2 = "198.51.100.8"
	)
	for _, c := range []struct {
		name  string
		mode  string
		lines []connLine
		want  []string
	}{
		{"invalid user then its password is one attempt", ModeNormal, []connLine{
			{10, "Invalid user nosuchuser from " + h + " port 4000"},
			{10, "Failed password for invalid user nosuchuser from " + h + " port 4000 ssh2"},
		}, []string{"failure invalid-user " + h, "repeat"}},
		{"only a bad user name is one failure", ModeNormal, []connLine{
			{10, "Invalid user nosuchuser from " + h + " port 4000"},
			{10, "Connection closed by invalid user nosuchuser " + h + " port 4000 [preauth]"},
		}, []string{"failure invalid-user " + h, "-"}},
		{"every further password counts", ModeNormal, []connLine{
			{10, "Invalid user admin from " + h + " port 4000"},
			{10, "Failed password for invalid user admin from " + h + " port 4000 ssh2"},
			{10, "Failed password for invalid user admin from " + h + " port 4000 ssh2"},
			{10, "Failed password for invalid user admin from " + h + " port 4000 ssh2"},
		}, []string{"failure invalid-user " + h, "repeat", "failure failed " + h, "failure failed " + h}},
		{"two connections, two attempts", ModeNormal, []connLine{
			{10, "Invalid user a from " + h + " port 4000"},
			{11, "Invalid user a from " + h + " port 4001"},
			{11, "Failed password for invalid user a from " + h + " port 4001 ssh2"},
			{10, "Failed password for invalid user a from " + h + " port 4000 ssh2"},
		}, []string{"failure invalid-user " + h, "failure invalid-user " + h, "repeat", "repeat"}},
		{"not allowed then its password", ModeNormal, []connLine{
			{10, "User root from " + h + " not allowed because not listed in AllowUsers"},
			{10, "Failed password for invalid user root from " + h + " port 4000 ssh2"},
		}, []string{"failure not-allowed " + h, "repeat"}},
		{"pam_unix repeats Failed password", ModeNormal, []connLine{
			{10, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=" + h + "  user=root"},
			{10, "Failed password for root from " + h + " port 4000 ssh2"},
		}, []string{"-", "failure failed " + h}},
		{"PAM error then Failed keyboard-interactive", ModeNormal, []connLine{
			{10, "error: PAM: Authentication failure for root from " + h},
			{10, "Failed keyboard-interactive/pam for root from " + h + " port 4000 ssh2"},
			{10, "error: PAM: Authentication failure for root from " + h},
			{10, "Failed keyboard-interactive/pam for root from " + h + " port 4000 ssh2"},
		}, []string{"failure pam " + h, "repeat", "failure pam " + h, "repeat"}},
		{"Failed keyboard-interactive then PAM error", ModeNormal, []connLine{
			{10, "Failed keyboard-interactive/pam for root from " + h + " port 4000 ssh2"},
			{10, "error: PAM: Authentication failure for root from " + h},
		}, []string{"failure failed " + h, "repeat"}},
		{"invalid user through PAM", ModeNormal, []connLine{
			{10, "Invalid user x from " + h + " port 4000"},
			{10, "error: PAM: User not known to the underlying authentication module for illegal user x from " + h},
			{10, "Failed keyboard-interactive/pam for invalid user x from " + h + " port 4000 ssh2"},
		}, []string{"failure invalid-user " + h, "repeat", "repeat"}},
		{"MaxAuthTries after passwords repeats the last one", ModeNormal, []connLine{
			{10, "Failed password for root from " + h + " port 4000 ssh2"},
			{10, "Failed password for root from " + h + " port 4000 ssh2"},
			{10, "error: maximum authentication attempts exceeded for root from " + h + " port 4000 ssh2 [preauth]"},
			{10, "Disconnecting authenticating user root " + h + " port 4000: Too many authentication failures [preauth]"},
		}, []string{"failure failed " + h, "failure failed " + h, "repeat", "repeat"}},
		{"an agent's keys: not failures, until MaxAuthTries", ModeNormal, []connLine{
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: RSA SHA256:b"},
			{10, "error: maximum authentication attempts exceeded for git from " + h + " port 4000 ssh2 [preauth]"},
			{10, "Disconnecting authenticating user git " + h + " port 4000: Too many authentication failures [preauth]"},
		}, []string{"-", "-", "failure max-auth-tries " + h, "repeat"}},
		{"old Disconnecting without address", ModeNormal, []connLine{
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Disconnecting: Too many authentication failures for git [preauth]"},
		}, []string{"-", "failure too-many-failures " + h}},
		{"old Disconnecting after MaxAuthTries", ModeNormal, []connLine{
			{10, "error: maximum authentication attempts exceeded for invalid user x from " + h + " port 4000 ssh2 [preauth]"},
			{10, "Disconnecting: Too many authentication failures [preauth]"},
		}, []string{"failure max-auth-tries " + h, "repeat"}},
		{"a key, then a password", ModeNormal, []connLine{
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Failed password for git from " + h + " port 4000 ssh2"},
			{10, "Accepted password for git from " + h + " port 4000 ssh2"},
		}, []string{"-", "failure failed " + h, "login git " + h}},
		{"account locked counts at the connection's address", ModeNormal, []connLine{
			{10, "User root not allowed because account is locked"},
			{10, "input_userauth_request: invalid user root [preauth]"},
			{10, "Received disconnect from " + h + ": 11: Bye Bye [preauth]"},
		}, []string{"-", "-", "failure account-locked " + h}},
		{"account locked and its password are one attempt", ModeNormal, []connLine{
			{10, "User root not allowed because account is locked"},
			{10, "Failed password for invalid user root from " + h + " port 4000 ssh2"},
			{10, "Failed password for invalid user root from " + h + " port 4000 ssh2"},
		}, []string{"-", "failure account-locked " + h, "failure failed " + h}},
		{"account locked: a crafted name names no address", ModeNormal, []connLine{
			{10, "User x from " + h2 + " not allowed because account is locked"},
			{10, "Connection closed by " + h + " port 4000 [preauth]"},
		}, []string{"-", "failure account-locked " + h}},
		{"account locked of a connection that never names its address", ModeNormal, []connLine{
			{10, "User root not allowed because account is locked"},
		}, []string{"-"}},
		{"several user names, then Accepted", ModeNormal, []connLine{
			{10, "Failed password for alice from " + h + " port 4000 ssh2"},
			{10, "Failed publickey for bob from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Accepted publickey for bob from " + h + " port 4000 ssh2: ED25519 SHA256:b"},
		}, []string{"failure failed " + h, "failure several-users " + h, "failure several-users " + h}},
		{"one user, then Accepted", ModeNormal, []connLine{
			{10, "Failed publickey for bob from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Accepted publickey for bob from " + h + " port 4000 ssh2: ED25519 SHA256:b"},
		}, []string{"-", "login bob " + h}},
		{"user change", ModeNormal, []connLine{
			{10, "Failed password for invalid user a from " + h + " port 4000 ssh2"},
			{10, "Disconnecting invalid user a " + h + " port 4000: Change of username or service not allowed: (a,ssh-connection) -> (b,ssh-connection) [preauth]"},
		}, []string{"failure failed " + h, "failure user-change " + h}},
		{"ddos: a connection that failed ends once", ModeDDoS, []connLine{
			{10, "Failed password for root from " + h + " port 4000 ssh2"},
			{10, "Received disconnect from " + h + " port 4000:11: Bye Bye [preauth]"},
			{10, "Disconnected from authenticating user root " + h + " port 4000 [preauth]"},
		}, []string{"failure failed " + h, "-", "repeat"}},
		{"ddos: a connection that only drops", ModeDDoS, []connLine{
			{10, "Connection closed by " + h + " port 4000 [preauth]"},
			{11, "Connection closed by authenticating user root " + h + " port 4001 [preauth]"},
		}, []string{"failure closed-preauth " + h, "failure closed-auth-user " + h}},
		{"ddos: the listener's timeout is about pid N", ModeDDoS, []connLine{
			{10, "Invalid user x from " + h + " port 4000"},
			{1, "Timeout before authentication for connection from " + h + " to 192.0.2.1, pid = 10"},
			{1, "Timeout before authentication for connection from " + h + " to 192.0.2.1, pid = 11"},
		}, []string{"failure invalid-user " + h, "repeat", "failure timeout-preauth " + h}},
		{"ddos: JSch gives up after its password failed", ModeDDoS, []connLine{
			{10, "Failed password for root from " + h + " port 4000 ssh2"},
			{10, "Received disconnect from " + h + " port 4000:3: com.jcraft.jsch.JSchException: Auth fail [preauth]"},
			{10, "Disconnected from authenticating user root " + h + " port 4000 [preauth]"},
		}, []string{"failure failed " + h, "repeat", "repeat"}},
		{"ddos: JSch gives up after public keys only", ModeDDoS, []connLine{
			{0, "Failed publickey for git from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{0, "Received disconnect from " + h + " port 4000:3: com.jcraft.jsch.JSchException: Auth fail [preauth]"},
			{0, "Disconnected from authenticating user git " + h + " port 4000 [preauth]"},
		}, []string{"-", "failure auth-fail " + h, "repeat"}},
		{"normal: JSch after public keys only", ModeNormal, []connLine{
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Received disconnect from " + h + " port 4000:3: com.jcraft.jsch.JSchException: Auth fail [preauth]"},
		}, []string{"-", "failure auth-fail " + h}},
		{"aggressive: every key counts", ModeAggressive, []connLine{
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: ED25519 SHA256:a"},
			{10, "Failed publickey for git from " + h + " port 4000 ssh2: RSA SHA256:b"},
			{10, "error: maximum authentication attempts exceeded for git from " + h + " port 4000 ssh2 [preauth]"},
		}, []string{"failure failed-publickey " + h, "failure failed-publickey " + h, "repeat"}},
		{"a reused process id with another address is another connection", ModeNormal, []connLine{
			{10, "Invalid user a from " + h + " port 4000"},
			{10, "Failed password for invalid user a from " + h2 + " port 4000 ssh2"},
		}, []string{"failure invalid-user " + h, "failure failed " + h2}},
		{"no process id: grouped by address and port", ModeNormal, []connLine{
			{0, "Invalid user a from " + h + " port 4000"},
			{0, "Failed password for invalid user a from " + h + " port 4000 ssh2"},
			{0, "Invalid user a from " + h + " port 4001"},
			{0, "Failed password for invalid user a from " + h + " port 4002 ssh2"},
		}, []string{"failure invalid-user " + h, "repeat", "failure invalid-user " + h, "failure failed " + h}},
		{"no process id: lines without a port stand alone", ModeNormal, []connLine{
			{0, "error: PAM: Authentication failure for root from " + h},
			{0, "Failed keyboard-interactive/pam for root from " + h + " port 4000 ssh2"},
			{0, "User root not allowed because account is locked"},
			{0, "Disconnecting: Too many authentication failures [preauth]"},
			{0, "Accepted password for rda from " + h + " port 4003 ssh2"},
		}, []string{"failure pam " + h, "failure failed " + h, "-", "-", "login rda " + h}},
		{"ddos: without process ids, a reused source port is a new connection once the old one ended", ModeDDoS, []connLine{
			{0, "Connection closed by " + h + " port 4000 [preauth]"},
			{0, "Connection closed by " + h + " port 4000 [preauth]"},
			{0, "Invalid user a from " + h + " port 4000"},
			{0, "Failed password for invalid user a from " + h + " port 4000 ssh2"},
			{0, "Received disconnect from " + h + " port 4000:11: Bye Bye [preauth]"},
			{0, "Disconnected from invalid user a " + h + " port 4000 [preauth]"},
			{0, "Connection closed by " + h + " port 4000 [preauth]"},
		}, []string{"failure closed-preauth " + h, "failure closed-preauth " + h, "failure invalid-user " + h, "repeat", "-", "repeat",
			"failure closed-preauth " + h}},
		{"a process id that comes back after its connection ended", ModeNormal, []connLine{
			{10, "Invalid user a from " + h + " port 4000"},
			{10, "Connection closed by invalid user a " + h + " port 4000 [preauth]"},
			{10, "Failed password for invalid user a from " + h + " port 4001 ssh2"},
		}, []string{"failure invalid-user " + h, "-", "failure failed " + h}},
		{"ddos: kex_exchange_identification counts at the connection's address", ModeDDoS, []connLine{
			{10, "error: kex_exchange_identification: Connection closed by remote host"},
			{10, "Connection closed by " + h + " port 4000"},
			{11, "error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\""},
			{11, "banner exchange: Connection from " + h + " port 4001: invalid format"},
			{12, "error: kex_exchange_identification: read: Connection reset by peer"},
			{12, "Connection reset by " + h + " port 4002 [preauth]"},
		}, []string{"-", "failure kex-identification " + h, "-", "failure banner-exchange " + h, "-", "failure kex-identification " + h}},
		{"normal: kex_exchange_identification is no failure", ModeNormal, []connLine{
			{10, "error: kex_exchange_identification: Connection closed by remote host"},
			{10, "Connection closed by " + h + " port 4000"},
		}, []string{"-", "-"}},
		{"ddos: Read from socket failed", ModeDDoS, []connLine{
			{10, "Read from socket failed: Connection reset by peer [preauth]"},
			{10, "Disconnected from " + h + " port 4000 [preauth]"},
		}, []string{"-", "failure read-socket " + h}},
		{"VERBOSE's Connection from names the address first", ModeNormal, []connLine{
			{10, "Connection from " + h + " port 4000 on 192.0.2.1 port 22 rdomain \"\""},
			{10, "User root not allowed because account is locked"},
			{10, "Failed password for invalid user root from " + h + " port 4000 ssh2"},
		}, []string{"-", "failure account-locked " + h, "repeat"}},
		{"Red Hat's audit line names the address", ModeNormal, []connLine{
			{10, "SSH: Server;Ltype: Version;Remote: " + h + "-4000;Protocol: 2.0;Client: libssh2_1.4.3"},
			{10, "User root not allowed because account is locked"},
		}, []string{"-", "failure account-locked " + h}},
		{"aggressive: negotiation failures without an address", ModeAggressive, []connLine{
			{10, "Connection from " + h + " port 4000 on 192.0.2.1 port 22"},
			{10, "fatal: Unable to negotiate a key exchange method [preauth]"},
			{11, "fatal: no matching cipher found: client aes128-cbc server aes256-gcm@openssh.com [preauth]"},
			{11, "Connection closed by " + h + " port 4001 [preauth]"},
		}, []string{"-", "failure negotiate " + h, "-", "failure negotiate " + h}},
		{"control characters never count, on a connection either", ModeNormal, []connLine{
			{10, "Invalid user a from " + h + " port 4000"},
			{10, "Failed password for root from " + h + " port 4000 ssh2\n from " + h2 + " port 22 ssh2"},
			{10, "Failed password for invalid user a from " + h + " port 4000 ssh2"},
		}, []string{"failure invalid-user " + h, "-", "repeat"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := track(t, c.mode, c.lines)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}

func TestTrackerForgets(t *testing.T) {
	f, _ := SSHD(ModeNormal)
	tr := NewTracker(f)
	next := func(at time.Time, pid int, msg string) Kind {
		return tr.Next(events.Entry{Time: at, PID: pid, Message: msg}).Kind
	}
	// An idle connection is forgotten: a Failed line after ConnIdle is a new attempt.
	next(t0, 10, "Invalid user a from 192.0.2.1 port 4000")
	if k := next(t0.Add(ConnIdle+time.Second), 10, "Failed password for invalid user a from 192.0.2.1 port 4000 ssh2"); k != Failure {
		t.Errorf("after ConnIdle: %v, want failure", k)
	}
	// Times before 1970 are times like any other.
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	next(old, 12, "Invalid user a from 192.0.2.1 port 4000")
	if k := next(old.Add(time.Second), 12, "Failed password for invalid user a from 192.0.2.1 port 4000 ssh2"); k != Repeat {
		t.Errorf("a connection of 1960: %v, want repeat", k)
	}
	// So is one whose next line is much older than its latest (lines out of order).
	next(t0.Add(2*ConnIdle), 11, "Invalid user a from 192.0.2.1 port 4000")
	if k := next(t0, 11, "Failed password for invalid user a from 192.0.2.1 port 4000 ssh2"); k != Failure {
		t.Errorf("a line ConnIdle older: %v, want failure", k)
	}
	// The number of connections is bounded, the oldest go first.
	for i := range 3 * DefaultMaxConns {
		next(t0.Add(time.Hour), 100+i, fmt.Sprintf("Invalid user a from 192.0.2.2 port %d", 1000+i%60000))
	}
	if n := tr.c.len(); n != DefaultMaxConns {
		t.Errorf("%d connections tracked, want %d", n, DefaultMaxConns)
	}
	last := 100 + 3*DefaultMaxConns - 1
	if k := next(t0.Add(time.Hour), last, "Failed password for invalid user a from 192.0.2.2 port 1 ssh2"); k != Repeat {
		t.Errorf("newest connection: %v, want repeat", k)
	}
	if k := next(t0.Add(time.Hour), 100, "Failed password for invalid user a from 192.0.2.2 port 1 ssh2"); k != Failure {
		t.Errorf("evicted connection: %v, want failure", k)
	}
	// Stale connections go as time passes, without a cap to reach.
	next(t0.Add(3*time.Hour), 7, "Invalid user a from 192.0.2.3 port 4000")
	if n := tr.c.len(); n != 1 {
		t.Errorf("%d connections after hours of quiet, want 1", n)
	}
}

func TestTrackerConfigFilter(t *testing.T) {
	f, _ := NewFilter("web", []string{`fail from <HOST>`}, nil)
	tr := NewTracker(f)
	for range 2 {
		if r := tr.Next(events.Entry{Time: t0, PID: 3, Message: "fail from 192.0.2.1"}); r.Kind != Failure {
			t.Errorf("config filter: %+v", r)
		}
	}
}

// TestEngineOneAttemptOneFailure is the booted Debian's case: each `ssh nosuchuser@host` with one
// password logs "Invalid user" and "Failed password for invalid user"; with maxretry = 3 the third
// connection bans, not the second.
func TestEngineOneAttemptOneFailure(t *testing.T) {
	h := newHarness(t, settings())
	for i := range 3 {
		pid := 800 + i
		at := t0.Add(time.Duration(i) * time.Second)
		port := fmt.Sprint(50000 + i)
		h.clock.t = at
		if !h.e.Handle("sshd", events.Entry{Time: at, PID: pid, Message: "Invalid user nosuchuser from 192.0.2.50 port " + port}) {
			t.Fatalf("try %d: Invalid user is no failure", i+1)
		}
		if h.e.Handle("sshd", events.Entry{Time: at, PID: pid, Message: "Failed password for invalid user nosuchuser from 192.0.2.50 port " + port + " ssh2"}) {
			t.Errorf("try %d: its Failed password counted again", i+1)
		}
		if banned := len(h.e.Bans("sshd")) > 0; banned != (i == 2) {
			t.Fatalf("after try %d: banned %v", i+1, banned)
		}
	}
	if st, _ := h.e.Stats("sshd"); st.TotalFailed != 3 {
		t.Errorf("TotalFailed = %d, want 3", st.TotalFailed)
	}
}

// TestEngineConnsCheckpointed: a restart between "Invalid user" and its Failed line (the checkpoint
// was written in between) still knows they are one attempt, and an account-locked line still waits
// for its connection's address.
func TestEngineConnsCheckpointed(t *testing.T) {
	h := newHarness(t, settings())
	h.e.Handle("sshd", events.Entry{Time: t0, PID: 900, Message: "Invalid user x from 192.0.2.60 port 4000"})
	h.e.Handle("sshd", events.Entry{Time: t0, PID: 901, Message: "User root not allowed because account is locked"})
	h.e.Handle("sshd", events.Entry{Time: t0, Message: "Invalid user y from 192.0.2.61 port 4001"})
	st := h.e.Snapshot()
	b := st.AppendJSON(nil)
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Jails[0].Conns, st.Jails[0].Conns) || len(st.Jails[0].Conns) != 3 {
		t.Fatalf("conns after a JSON round trip:\n%+v\nwant\n%+v", back.Jails[0].Conns, st.Jails[0].Conns)
	}

	h2 := newHarness(t, settings())
	if err := h2.e.Restore(back); err != nil {
		t.Fatal(err)
	}
	if h2.e.Handle("sshd", events.Entry{Time: t0.Add(time.Second), PID: 900, Message: "Failed password for invalid user x from 192.0.2.60 port 4000 ssh2"}) {
		t.Error("the Failed line after the restart counted again")
	}
	if h2.e.Handle("sshd", events.Entry{Time: t0.Add(time.Second), Message: "Failed password for invalid user y from 192.0.2.61 port 4001 ssh2"}) {
		t.Error("the Failed line of the connection known by address and port counted again")
	}
	if !h2.e.Handle("sshd", events.Entry{Time: t0.Add(time.Second), PID: 901, Message: "Connection closed by 192.0.2.62 port 4002 [preauth]"}) {
		t.Error("the account-locked failure was lost in the restart")
	}
	if st, _ := h2.e.Stats("sshd"); st.TotalFailed != 3 {
		t.Errorf("TotalFailed = %d after the restart, want 3 (two invalid users, one locked account)", st.TotalFailed)
	}
}
