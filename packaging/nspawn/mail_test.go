package nspawn

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// actionSentMessageID is the MESSAGE_ID of an action's "done" entry (events.MsgActionSent).
	actionSentMessageID = "56dce26d0c83485ab63c580e17d5ec3f"
	// mailed is the attacker whose ban the mail subtest has mailed.
	mailed = "192.0.2.9"
	// admin is the local user who reads root's mail, as the Debian installer sets it up.
	admin = "admin"
	// maxExposure is the highest exposure level gaolerd.service may have, mail action on.
	maxExposure = 2.5
)

// mailDropIn turns the mail action on for the sshd jail as README shows it, to root on this host:
// the smtp server is the default, Debian's exim4 on 127.0.0.1:25. The container has no network
// beyond lo, so there is no whois server to ask.
const mailDropIn = `# gaoler's boot test: mail to root through the local MTA
[jail.sshd]
actions = ["mail"]

[action.mail]
type = "mail"
to = ["root@localhost"]
whois = false
`

// checkMail checks that a ban is mailed from the hardened unit through the MTA a Debian host has by
// default: exim4 (exim4-daemon-light) as the Debian installer leaves it, "local delivery only"
// (dc_eximconfig_configtype='local') listening on 127.0.0.1 and ::1 port 25. The mail goes to
// root@localhost, which Debian's exim4 does not deliver to root itself (root is among its
// never_users): /etc/aliases sends root's mail to a real user, as the installer does for the first
// user it creates, and exim4 delivers it to that user's mailbox, /var/mail/admin.
func checkMail(t *testing.T, c *container) {
	conf := c.run(t, 10*time.Second, "cat /etc/exim4/update-exim4.conf.conf")
	for _, want := range []string{"dc_eximconfig_configtype='local'", "dc_local_interfaces='127.0.0.1 ; ::1'"} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("exim4 is not configured as Debian's default: no %s in update-exim4.conf.conf:\n%s", want, conf)
		}
	}
	c.waitFor(t, 30*time.Second, "exim4 running", "systemctl is-active exim4")
	listening := c.waitFor(t, 10*time.Second, "exim4 on 127.0.0.1:25", "ss -Hltn 'sport = :25' | grep -F 127.0.0.1:25")
	t.Logf("listening on port 25:\n%s", listening)

	// The admin's part: a user for root's mail, as the Debian installer makes one.
	c.run(t, 10*time.Second, "useradd -m "+admin+" && echo 'root: "+admin+"' >>/etc/aliases")
	c.run(t, 10*time.Second, fmt.Sprintf("cat >/etc/gaoler/jail.d/95-boot-test-mail.toml <<'EOF'\n%sEOF", mailDropIn))
	c.run(t, 20*time.Second, "gaoler check-config")
	before := len(journalJSON(t, c, "journalctl -b -u gaolerd -o json MESSAGE_ID="+reloadedMessageID))
	c.run(t, 30*time.Second, "systemctl reload gaolerd")
	c.waitFor(t, 10*time.Second, "reloaded entry", fmt.Sprintf(
		"test $(journalctl -b -u gaolerd -o cat MESSAGE_ID=%s | wc -l) -gt %d", reloadedMessageID, before))

	// A ban from real failed logins.
	c.run(t, 10*time.Second, "ip addr add "+mailed+"/32 dev lo")
	attempts := ""
	for i := 0; i < maxRetry; i++ {
		attempts += "(" + sshCmd(mailed, "wrong-password") + ") & "
	}
	c.exec(30*time.Second, attempts+"wait")
	c.waitFor(t, 15*time.Second, mailed+" banned", "nft list set inet gaoler sshd_v4 | grep -qF "+mailed)

	// gaolerd handed it to exim4, which delivered it to the admin's mailbox.
	box := "/var/mail/" + admin
	mbox, err := c.exec(10*time.Second, pollScript(30*time.Second, "grep -qF 'banned "+mailed+"' "+box)+" && cat "+box)
	if err != nil {
		t.Fatalf("no mail about %s in %s: %v\n%s\n%s\n%s", mailed, box, err, mbox,
			c.diag("journalctl -b -u gaolerd --no-pager | tail -n 20"), c.diag("tail -n 20 /var/log/exim4/mainlog"))
	}
	t.Logf("%s:\n%s", box, mbox)
	if n := len(regexp.MustCompile(`(?m)^From `).FindAllString(mbox, -1)); n != 1 {
		t.Errorf("%s holds %d mails, want the one", box, n)
	}
	for _, want := range []string{
		"Subject: [gaoler] sshd: banned " + mailed + " on gaoler-test",
		"To: root@localhost",
		"Envelope-to: root@localhost", // written by exim4's local delivery
		"The journal entries behind the ban (3):",
	} {
		if !strings.Contains(mbox, want) {
			t.Errorf("the mail lacks %q", want)
		}
	}
	if n := strings.Count(mbox, "  Failed password for victim from "+mailed+" port "); n != maxRetry {
		t.Errorf("the mail shows %d of sshd's lines, want the %d that made the ban", n, maxRetry)
	}
	// The Received: line exim4 adds: the message came in over SMTP from 127.0.0.1.
	if !regexp.MustCompile(`Received: from \[127\.0\.0\.1\] \(helo=gaoler-test\)\s+by gaoler-test with esmtp \(Exim `).MatchString(mbox) {
		t.Errorf("the mail has no Received: line of exim4 taking it from 127.0.0.1 over SMTP")
	}
	mainlog := c.run(t, 10*time.Second, "cat /var/log/exim4/mainlog")
	if !regexp.MustCompile(`=> ` + admin + ` <root@localhost> R=local_user T=mail_spool`).MatchString(mainlog) {
		t.Errorf("exim4's mainlog shows no delivery to %s's mailbox:\n%s", admin, lastLines(mainlog, 10))
	}

	// The outcome is in the journal, as gaolerd's own structured event.
	// (gaolerd logs it once exim4 has answered its QUIT, which may be after the delivery.)
	c.exec(15*time.Second, pollScript(10*time.Second, "journalctl -b -u gaolerd -o cat MESSAGE_ID="+actionSentMessageID+
		" GAOLER_ADDRESS="+mailed+" | grep -q ."))
	var sent map[string]any
	for _, e := range journalJSON(t, c, "journalctl -b -u gaolerd -o json MESSAGE_ID="+actionSentMessageID) {
		if e["GAOLER_ADDRESS"] == mailed {
			sent = e
		}
	}
	if sent == nil {
		t.Errorf("no action entry (MESSAGE_ID=%s) for the mail about %s", actionSentMessageID, mailed)
	} else {
		t.Logf("action entry: %v", sent["MESSAGE"])
		for k, v := range map[string]string{"GAOLER_ACTION": "mail", "GAOLER_ACTION_TYPE": "mail", "GAOLER_JAIL": "sshd",
			"GAOLER_EVENT": "ban", "_SYSTEMD_UNIT": "gaolerd.service"} {
			if sent[k] != v {
				t.Errorf("action entry: %s=%v, want %s", k, sent[k], v)
			}
		}
		if msg, _ := sent["MESSAGE"].(string); !strings.Contains(msg, "mailed to root@localhost") {
			t.Errorf("action entry: MESSAGE=%q", msg)
		}
	}

	// The unit's IP filter is in force in this container (cgroup BPF): with the same settings a
	// process reaches exim4 on 127.0.0.1 and not sshd on the host's other address, so the mail above
	// went through the sandbox, not around it.
	const other = "198.51.100.25" // on lo, never banned
	c.run(t, 10*time.Second, "ip addr add "+other+"/32 dev lo")
	c.run(t, 10*time.Second, bash("exec 3<>/dev/tcp/"+other+"/22")) // reachable without the filter
	// (The filter drops the packets: a connection it stops hangs, and timeout ends it.)
	ipFilter := "systemd-run --quiet --wait --pipe -p IPAddressDeny=any -p IPAddressAllow=localhost timeout 3 /bin/bash -c "
	if out, err := c.exec(30*time.Second, ipFilter+"'exec 3<>/dev/tcp/127.0.0.1/25 && head -c 3 <&3'"); err != nil || out != "220" {
		t.Errorf("with the unit's IP filter, exim4 on 127.0.0.1:25: %v: %q", err, out)
	}
	if out, err := c.exec(30*time.Second, ipFilter+"'exec 3<>/dev/tcp/"+other+"/22' 2>&1"); err == nil {
		t.Errorf("with the unit's IP filter, sshd on %s:22 was reachable: the filter is not in force here\n%s", other, out)
	} else {
		t.Logf("with the unit's IP filter, sshd on %s:22: %s", other, strings.TrimSpace(out))
	}

	// The sandbox that let the mail through is the shipped one, at most maxExposure.
	out, _ := c.exec(30*time.Second, "systemd-analyze security --no-pager gaolerd.service | tail -n 1")
	t.Logf("with the mail action: %s", strings.TrimSpace(out))
	m := regexp.MustCompile(`Overall exposure level for gaolerd.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("no exposure level in systemd-analyze security's output: %s", out)
	} else if level, err := strconv.ParseFloat(m[1], 64); err != nil || level > maxExposure {
		t.Errorf("gaolerd.service's exposure is %s, want at most %v", m[1], maxExposure)
	}

	// Back to the state the later subtests expect: two bans (attacker4, attacker6), no action.
	c.run(t, 10*time.Second, "gaoler unban sshd "+mailed)
	c.run(t, 10*time.Second, "rm /etc/gaoler/jail.d/95-boot-test-mail.toml && systemctl reload gaolerd")
}
