package jails

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/gaoler/gaoler/events"
)

// sshdCase is one message and what each mode should make of it: host "" means no failure.
type sshdCase struct {
	name string
	msg  string
	// normal, ddos, aggressive: the expected host in each mode ("" = no failure)
	normal, ddos, aggressive string
}

// all returns a case that is the same failure in every mode.
func all(name, msg, host string) sshdCase { return sshdCase{name, msg, host, host, host} }

// from returns a case that is a failure from mode on.
func fromDDoS(name, msg, host string) sshdCase { return sshdCase{name, msg, "", host, host} }
func onlyAggressive(name, msg, host string) sshdCase {
	return sshdCase{name, msg, "", "", host}
}

var sshdCases = []sshdCase{
	// Failed <method>
	all("failed password", "Failed password for root from 192.0.2.7 port 50273 ssh2", "192.0.2.7"),
	all("failed password invalid user", "Failed password for invalid user admin from 192.0.2.8 port 22 ssh2", "192.0.2.8"),
	all("failed password ipv6", "Failed password for invalid user ROOT from 2001:db8::1:1 port 50273 ssh2", "2001:db8::1:1"),
	all("failed password v4-mapped", "Failed password for root from ::ffff:198.51.100.4 port 1 ssh2", "198.51.100.4"),
	all("failed password no ssh2", "Failed password for invalid user ROOT from 192.0.2.70 port 12345", "192.0.2.70"),
	all("failed password no port", "Failed password for invalid user ROOT from 2001:db8:cccc:1234::1:1", "2001:db8:cccc:1234::1:1"),
	all("failed password ssh1", "Failed password for dan from 127.0.0.2 port 45416 ssh1", "127.0.0.2"),
	all("failed none invalid", "Failed none for invalid user test from 192.0.2.9 port 40000 ssh2", "192.0.2.9"),
	all("failed kbdint pam", "Failed keyboard-interactive/pam for invalid user jamedds from 198.51.100.77 port 33723 ssh2", "198.51.100.77"),
	all("failed publickey invalid user", "Failed publickey for invalid user graysky from 192.0.2.10 port 37954 ssh2: RSA SHA256:v3dpapGleDaUKf4V1vKyR9ZyUgjaJAmoCTcb2PLljI", "192.0.2.10"),
	onlyAggressive("failed publickey valid user", "Failed publickey for git from 192.0.2.1 port 57904 ssh2: ECDSA SHA256:0effxxxx", "192.0.2.1"),
	all("failed hostbased", `Failed hostbased for dan from 192.0.2.11 port 45785 ssh2: RSA SHA256:8ce3aa0f, client user "dan", client host "localhost.localdomain"`, "192.0.2.11"),
	all("failed preauth suffix", "Failed password for root from 192.0.2.12 port 1 ssh2 [preauth]", "192.0.2.12"),
	all("failed trailing space", "Failed password for root from 192.0.2.13 port 1 ssh2 ", "192.0.2.13"),
	all("failed ipv6 zone", "Failed password for root from fe80::1%eth0 port 1 ssh2", "fe80::1"),
	// Invalid user
	all("invalid user", "Invalid user ftp from 192.0.2.20 port 37220", "192.0.2.20"),
	all("invalid user no port", "Invalid user ftp from 192.0.2.21", "192.0.2.21"),
	all("invalid user empty", "Invalid user  from 192.0.2.68 port 34916", "192.0.2.68"),
	all("illegal user", "Illegal user test from 192.0.2.22", "192.0.2.22"),
	all("invalid user ipv6", "Invalid user oracle from 2001:db8::2 port 4444", "2001:db8::2"),
	// not allowed
	all("allowusers", "User root from 192.0.2.30 not allowed because not listed in AllowUsers", "192.0.2.30"),
	all("denyusers", "User root from 192.0.2.31 not allowed because listed in DenyUsers", "192.0.2.31"),
	all("no group", "User allena from 192.0.2.32 not allowed because not in any group", "192.0.2.32"),
	all("denygroups", "User root from 192.0.2.33 not allowed because a group is listed in DenyGroups", "192.0.2.33"),
	all("allowgroups", "User root from 192.0.2.34 not allowed because none of user's groups are listed in AllowGroups", "192.0.2.34"),
	all("root refused", "ROOT LOGIN REFUSED FROM 192.0.2.40", "192.0.2.40"),
	all("root refused port", "ROOT LOGIN REFUSED FROM 192.0.2.41 port 12345 [preauth]", "192.0.2.41"),
	all("root refused mapped", "ROOT LOGIN REFUSED FROM ::ffff:192.0.2.42", "192.0.2.42"),
	// PAM
	all("pam auth failure", "error: PAM: Authentication failure for myhlj1374 from 192.0.2.50", "192.0.2.50"),
	all("pam auth failure ipv6", "error: PAM: Authentication failure for test-ipv6 from 2001:db8:220:1:248:1893:25c8:1946", "2001:db8:220:1:248:1893:25c8:1946"),
	all("pam via", "error: PAM: authentication error for james from 192.0.2.51 via 192.168.1.201", "192.0.2.51"),
	all("pam not known", "error: PAM: User not known to the underlying authentication module for illegal user kernelitshell from 192.0.2.52", "192.0.2.52"),
	sshdCase{"pam hostname", "error: PAM: Authentication failure for stefanor from example.com", "", "", ""},
	sshdCase{"pam_unix is the same attempt as Failed password", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.112  user=root", "", "", ""},
	// MaxAuthTries
	all("max auth tries", "error: maximum authentication attempts exceeded for root from 192.0.2.60 port 49940 ssh2 [preauth]", "192.0.2.60"),
	all("max auth tries invalid", "error: maximum authentication attempts exceeded for invalid user admin from 2001:db8::60 port 49940 ssh2 [preauth]", "2001:db8::60"),
	all("too many failures", "Disconnecting authenticating user root 192.0.2.61 port 33553: Too many authentication failures [preauth]", "192.0.2.61"),
	all("too many failures invalid", "Disconnecting invalid user admin 192.0.2.62 port 33553: Too many authentication failures [preauth]", "192.0.2.62"),
	sshdCase{"too many failures no host", "Disconnecting: Too many authentication failures for root [preauth]", "", "", ""},
	// ddos
	fromDDoS("no identification", "Did not receive identification string from 192.0.2.70", "192.0.2.70"),
	fromDDoS("no identification port", "Did not receive identification string from 192.0.2.71 port 35836", "192.0.2.71"),
	fromDDoS("bad version", "Bad protocol version identification 'dummy string' from 192.0.2.72 port 31778", "192.0.2.72"),
	fromDDoS("bad version inject", "Bad protocol version identification 'dummy string' from 192.0.2.1' from 192.0.2.73 port 31778", "192.0.2.73"),
	fromDDoS("banner exchange", "banner exchange: Connection from 192.0.2.74 port 55555: invalid format", "192.0.2.74"),
	fromDDoS("banner exchange ipv6", "banner exchange: Connection from 2001:db8::74 port 55555: could not read protocol version", "2001:db8::74"),
	fromDDoS("timeout", "fatal: Timeout before authentication for 192.0.2.75 port 1234", "192.0.2.75"),
	fromDDoS("timeout old", "Timeout before authentication for 192.0.2.76", "192.0.2.76"),
	fromDDoS("dispatch fatal", "ssh_dispatch_run_fatal: Connection from 192.0.2.77 port 6666: invalid format [preauth]", "192.0.2.77"),
	fromDDoS("dispatch fatal user", "ssh_dispatch_run_fatal: Connection from authenticating user root 192.0.2.78 port 6666: message authentication code incorrect [preauth]", "192.0.2.78"),
	fromDDoS("closed preauth", "Connection closed by 192.0.2.79 port 14282 [preauth]", "192.0.2.79"),
	fromDDoS("closed preauth no port", "Connection closed by 192.0.2.212 [preauth]", "192.0.2.212"),
	fromDDoS("reset preauth", "Connection reset by 192.0.2.39 port 14282 [preauth]", "192.0.2.39"),
	fromDDoS("disconnected preauth", "Disconnected from 192.0.2.4 port 36985 [preauth]", "192.0.2.4"),
	sshdCase{"kex identification carries no address", "error: kex_exchange_identification: Connection closed by remote host", "", "", ""},
	sshdCase{"kex invalid identifier", `error: kex_exchange_identification: client sent invalid protocol identifier "GET / HTTP/1.1"`, "", "", ""},
	// aggressive
	onlyAggressive("negotiate cipher", "Unable to negotiate with 192.0.2.80 port 55419: no matching cipher found. Their offer: aes256-cbc,3des-cbc [preauth]", "192.0.2.80"),
	onlyAggressive("negotiate kex", "fatal: Unable to negotiate with 2001:db8::81 port 55419: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1", "2001:db8::81"),
	onlyAggressive("negotiate host key", "Unable to negotiate with 192.0.2.82 port 50404: no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]", "192.0.2.82"),
	onlyAggressive("no auth methods", "Received disconnect from 192.0.2.83 port 1684:14: No supported authentication methods available [preauth]", "192.0.2.83"),
	onlyAggressive("no auth methods old", "error: Received disconnect from 192.0.2.84: 14: No supported authentication methods available [preauth]", "192.0.2.84"),
	onlyAggressive("no auth methods ipv6", "Received disconnect from 2001:db8::85 port 1883:14: No authentication methods available [preauth]", "2001:db8::85"),
	fromDDoS("closed authenticating", "Connection closed by authenticating user root 192.0.2.10 port 46038 [preauth]", "192.0.2.10"),
	fromDDoS("closed invalid empty", "Connection closed by invalid user  192.0.2.68 port 34916 [preauth]", "192.0.2.68"),
	fromDDoS("disconnected authenticating", "Disconnected from authenticating user admin 192.0.2.6 port 33553 [preauth]", "192.0.2.6"),
	fromDDoS("reset authenticating", "Connection reset by authenticating user root 192.0.2.20 port 1558 [preauth]", "192.0.2.20"),
	fromDDoS("closed inject", "Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.11 port 46039 [preauth]", "192.0.2.11"),
	// tcp wrappers, clients giving up, user changes
	all("refused connect", "refused connect from 61-220-150-82.example.net (192.0.2.120)", "192.0.2.120"),
	all("refused connect unknown", "refused connect from unknown (2001:db8::120)", "2001:db8::120"),
	sshdCase{"refused connect name with space", "refused connect from a b (192.0.2.121)", "", "", ""},
	sshdCase{"refused connect host name only", "refused connect from host.example (host.example)", "", "", ""},
	all("auth fail jsch", "Received disconnect from 192.0.2.122 port 1234:3: com.jcraft.jsch.JSchException: Auth fail [preauth]", "192.0.2.122"),
	all("auth fail no preauth", "Received disconnect from 2001:db8::122 port 1234:3: com.jcraft.jsch.JSchException: Auth fail", "2001:db8::122"),
	all("auth fail old form", "Received disconnect from 192.0.2.123: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]", "192.0.2.123"),
	sshdCase{"auth fail other code", "Received disconnect from 192.0.2.124 port 1234:2: com.jcraft.jsch.JSchException: Auth fail [preauth]", "", "", ""},
	all("user change", "Disconnecting invalid user admin 192.0.2.125 port 4444: Change of username or service not allowed: (admin,ssh-connection) -> (root,ssh-connection) [preauth]", "192.0.2.125"),
	all("user change authenticating", "Disconnecting authenticating user root 2001:db8::125 port 4444: Change of username or service not allowed: (root,ssh-connection) -> (admin,ssh-connection) [preauth]", "2001:db8::125"),
	all("user change cut short", "Disconnecting invalid user "+strings.Repeat("u", 60)+" 192.0.2.126 port 4444: Change of username or service not allowed: ("+strings.Repeat("u", 56)+" [preauth]", "192.0.2.126"),
	sshdCase{"user change other user in reason", "Disconnecting invalid user admin 192.0.2.127 port 4444: Change of username or service not allowed: (root,ssh-connection) -> (x,ssh-connection) [preauth]", "", "", ""},
	all("pam without prefix", "Authentication failure for root from 192.0.2.128", "192.0.2.128"),
	all("pam failed without prefix", "authentication failed for root from 192.0.2.129 via 198.51.100.1", "192.0.2.129"),
	all("pam not known without prefix", "User not known to the underlying authentication module for illegal user x from 192.0.2.130", "192.0.2.130"),
	all("kernel prefix", "kernel: [ 1234.567]: Failed password for root from 192.0.2.131 port 22 ssh2", "192.0.2.131"),
	all("kernel prefix tight", "kernel:[12.5] Invalid user x from 192.0.2.132 port 22", "192.0.2.132"),
	sshdCase{"kernel prefix bad", "kernel: [x]: Failed password for root from 192.0.2.133 port 22 ssh2", "", "", ""},
	fromDDoS("timeout 9.8", "Timeout before authentication for connection from 192.0.2.134 to 192.0.2.1, pid = 4242", "192.0.2.134"),
	fromDDoS("timeout 9.8 ipv6", "Timeout before authentication for connection from 2001:db8::134 to 2001:db8::1, pid = 4242", "2001:db8::134"),
	fromDDoS("closed from authenticating", "Connection closed from authenticating user root 192.0.2.135 port 46038 [preauth]", "192.0.2.135"),
	fromDDoS("disconnected by invalid", "Disconnected by invalid user x 192.0.2.136 port 46038 [preauth]", "192.0.2.136"),
	all("solaris id prefix", "[ID 800047 auth.info] Failed password for root from 192.0.2.137 port 22 ssh2", "192.0.2.137"),
	sshdCase{"solaris id prefix bad", "[ID x auth.info] Failed password for root from 192.0.2.138 port 22 ssh2", "", "", ""},
	sshdCase{"connection from is no failure", "Connection from 192.0.2.139 port 4000 on 192.0.2.1 port 22 rdomain \"\"", "", "", ""},
	sshdCase{"audit line is no failure", "SSH: Server;Ltype: Kex;Remote: 192.0.2.139-4000;Enc: aes128-ctr;MAC: hmac-sha2-256;Compression: none", "", "", ""},
	sshdCase{"negotiate without address", "fatal: Unable to negotiate a key exchange method [preauth]", "", "", ""},
	// raw control characters: not sshd's (sshd escapes them)
	sshdCase{"raw newline", "Failed password for root from 198.51.100.24 port 22 ssh2\n from 198.51.100.25 port 22 ssh2", "", "", ""},
	sshdCase{"raw nul", "Failed password for root\x00 from 198.51.100.26 port 22 ssh2", "", "", ""},
	sshdCase{"raw escape", "Invalid user \x1b[2J from 198.51.100.27 port 22", "", "", ""},
	sshdCase{"raw tab", "Invalid user a\tb from 198.51.100.28 port 22", "", "", ""},
	sshdCase{"raw del", "Invalid user a\x7fb from 198.51.100.29 port 22", "", "", ""},
	all("escaped newline is text", `Failed password for invalid user a\n from 198.51.100.30 port 22 ssh2`, "198.51.100.30"),
	all("trailing newline", "Failed password for root from 198.51.100.31 port 22 ssh2\n", "198.51.100.31"),
	// addressless lines count only through their connection
	sshdCase{"too many failures no user", "Disconnecting: Too many authentication failures [preauth]", "", "", ""},
	// never failures
	sshdCase{"accepted password", "Accepted password for rda from 192.0.2.113 port 52100 ssh2", "", "", ""},
	sshdCase{"accepted publickey", "Accepted publickey for git from 192.0.2.1 port 57904 ssh2: ED25519 SHA256:abc", "", "", ""},
	sshdCase{"postponed", "Postponed publickey for git from 192.0.2.1 port 57904 ssh2 [preauth]", "", "", ""},
	sshdCase{"session opened", "pam_unix(sshd:session): session opened for user rda(uid=1000) by (uid=0)", "", "", ""},
	sshdCase{"session closed", "pam_unix(sshd:session): session closed for user rda", "", "", ""},
	sshdCase{"received disconnect", "Received disconnect from 192.0.2.5 port 50000:11: disconnected by user", "", "", ""},
	sshdCase{"received disconnect bye preauth", "Received disconnect from 192.0.2.5 port 50000:11: Bye Bye [preauth]", "", "", ""},
	sshdCase{"disconnected user", "Disconnected from user rda 192.0.2.5 port 50000", "", "", ""},
	sshdCase{"connection closed after auth", "Connection closed by 192.0.2.5 port 50000", "", "", ""},
	sshdCase{"connection closed user preauth", "Connection closed by user rda 192.0.2.5 port 50000 [preauth]", "", "", ""},
	sshdCase{"connection from", "Connection from 192.0.2.5 port 62004 on 192.0.2.10 port 22", "", "", ""},
	sshdCase{"server listening", "Server listening on 0.0.0.0 port 22.", "", "", ""},
	sshdCase{"break-in", "Address 192.0.2.4 maps to host.example, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!", "", "", ""},
	sshdCase{"account locked", "User root not allowed because account is locked", "", "", ""},
	sshdCase{"shell missing", "User root not allowed because shell /bin/nope does not exist", "", "", ""},
	sshdCase{"input_userauth_request", "input_userauth_request: invalid user root [preauth]", "", "", ""},
	sshdCase{"read socket", "fatal: Read from socket failed: Connection reset by peer [preauth]", "", "", ""},
	sshdCase{"received signal", "Received signal 15; terminating.", "", "", ""},
	sshdCase{"empty", "", "", "", ""},
	// crafted user names: the host is the one sshd wrote
	all("inject user from", "Failed password for invalid user from 10.10.1.1 from 192.0.2.90 port 58946 ssh2", "192.0.2.90"),
	all("inject user from port ssh2", "Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 192.0.2.91 port 58946 ssh2", "192.0.2.91"),
	all("inject valid user", "Failed password for x from 1.2.3.4 port 22 from 192.0.2.92 port 58946 ssh2", "192.0.2.92"),
	all("inject invalid user", "Invalid user x from 1.2.3.4 port 22 from 192.0.2.93 port 4", "192.0.2.93"),
	all("inject not allowed", "User x from 1.2.3.4 not allowed because listed in DenyUsers from 192.0.2.94 not allowed because listed in DenyUsers", "192.0.2.94"),
	all("inject max tries", "error: maximum authentication attempts exceeded for x from 1.2.3.4 port 22 ssh2 from 192.0.2.95 port 49940 ssh2 [preauth]", "192.0.2.95"),
	all("inject too many", "Disconnecting authenticating user x 1.2.3.4 port 22: Too many authentication failures 192.0.2.96 port 33553: Too many authentication failures [preauth]", "192.0.2.96"),
	all("inject pam", "error: PAM: Authentication failure for x from 1.2.3.4 from 192.0.2.97", "192.0.2.97"),
	all("inject publickey info", "Failed publickey for invalid user x from 1.2.3.4 port 22 ssh2: RSA SHA256:x from 192.0.2.98 port 1 ssh2: RSA SHA256:abc", "192.0.2.98"),
	sshdCase{"ambiguous publickey info", "Failed publickey for invalid user x from 1.2.3.4 port 22 ssh2: RSA-CERT SHA256:a ID y from 192.0.2.99 port 1 ssh2: RSA-CERT SHA256:b ID z (serial 1) CA RSA SHA256:c", "", "", ""},
	// crafted user names and client text in the new families
	all("inject refused connect name", "refused connect from x(1.2.3.4) (192.0.2.140)", "192.0.2.140"),
	sshdCase{"inject refused connect spaces", "refused connect from x (1.2.3.4) (192.0.2.141)", "", "", ""},
	all("inject auth fail reason", "Received disconnect from 192.0.2.142 port 5:3: x from 1.2.3.4 port 22: Auth fail [preauth]", "192.0.2.142"),
	sshdCase{"inject auth fail as user text", "Received disconnect from host.example port 5:3: x Received disconnect from 192.0.2.143 port 5:3: y: Auth fail", "", "", ""},
	all("inject user change user", "Disconnecting invalid user x 1.2.3.4 port 22: y 192.0.2.144 port 4444: Change of username or service not allowed: (x 1.2.3.4 port 22: y,ssh-connection) -> (z,ssh-connection) [preauth]", "192.0.2.144"),
	// the service is the client's too; only the reading whose user opens the reason is sshd's
	all("inject user change service", "Disconnecting invalid user a 192.0.2.145 port 1: Change of username or service not allowed: (a,b 192.0.2.1 port 2: Change of username or service not allowed: (a,b) -> (c,d) [preauth]", "192.0.2.145"),
	// a user name made so that both readings fit: not counted rather than guessed
	sshdCase{"inject user change two readings", "Disconnecting invalid user a 192.0.2.1 port 1: Change of username or service not allowed: (a, 192.0.2.145 port 2: Change of username or service not allowed: (a 192.0.2.1 port 1: Change of username or service not allowed: (a,,ssh-connection) -> (b,ssh-connection) [preauth]", "", "", ""},
	all("inject user change new user", "Disconnecting authenticating user a 192.0.2.146 port 4444: Change of username or service not allowed: (a,ssh-connection) -> (b from 1.2.3.4 port 1,ssh-connection) [preauth]", "192.0.2.146"),
	all("inject pam not known", "User not known to the underlying authentication module for illegal user x from 1.2.3.4 from 192.0.2.147", "192.0.2.147"),
	all("inject pam no prefix", "Authentication failure for x from 1.2.3.4 via 5.6.7.8 from 192.0.2.148", "192.0.2.148"),
	all("inject kernel prefix", "kernel: [ 1.5]: Failed password for invalid user kernel: [ 1.5]: x from 1.2.3.4 port 1 from 192.0.2.149 port 2 ssh2", "192.0.2.149"),
	fromDDoS("inject closed from user", "Connection closed from invalid user x 1.2.3.4 port 1 192.0.2.150 port 2 [preauth]", "192.0.2.150"),
	fromDDoS("inject disconnected by user", "Disconnected by authenticating user x 1.2.3.4 port 1 192.0.2.151 port 2 [preauth]", "192.0.2.151"),
	sshdCase{"inject account locked", "User x from 192.0.2.152 not allowed because account is locked", "", "", ""},
	sshdCase{"inject old too many", "Disconnecting: Too many authentication failures for x from 192.0.2.153 port 22 [preauth]", "", "", ""},
	fromDDoS("inject timeout 9.8 pid", "Timeout before authentication for connection from 192.0.2.154 to 192.0.2.1, pid = 4242", "192.0.2.154"),
	sshdCase{"timeout 9.8 bad pid", "Timeout before authentication for connection from 192.0.2.155 to 192.0.2.1, pid = 4242 x", "", "", ""},
	// password logs no INFO, so only the last " from " can be sshd's (the user is "test from ... ssh2:")
	all("password has no info", "Failed password for invalid user test from 192.0.2.100 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2", "10.10.1.2"),
	all("publickey bad info is user text", "Failed publickey for invalid user test from 192.0.2.105 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2", "10.10.1.2"),
	all("inject hostbased client host", `Failed hostbased for root from 192.0.2.101 port 5 ssh2: RSA SHA256:a, client user "u", client host "x from 1.2.3.4 port 1 ssh2"`, "192.0.2.101"),
	fromDDoS("inject closed user", "Connection closed by authenticating user x 1.2.3.4 port 22 192.0.2.102 port 1 [preauth]", "192.0.2.102"),
	all("inject method", "Failed x for root from 1.2.3.4 port 1 ssh2 for invalid user y from 192.0.2.103 port 5 ssh2", "192.0.2.103"),
	all("user is an address", "Failed password for invalid user 1.2.3.4 from 192.0.2.104 port 5 ssh2", "192.0.2.104"),
}

func TestSSHDFilter(t *testing.T) {
	for _, mode := range []string{ModeNormal, ModeDDoS, ModeAggressive} {
		f, err := SSHD(mode)
		if err != nil {
			t.Fatal(err)
		}
		rules := map[string]bool{}
		for _, r := range f.Rules() {
			rules[r] = true
		}
		for _, c := range sshdCases {
			want := map[string]string{ModeNormal: c.normal, ModeDDoS: c.ddos, ModeAggressive: c.aggressive}[mode]
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				host, rule, ok := f.Match(c.msg)
				got := ""
				if ok {
					got = host.String()
					if !rules[rule] {
						t.Errorf("rule %q not in Rules() %v", rule, f.Rules())
					}
				}
				if got != want {
					t.Errorf("Match(%q) = %q (rule %q), want %q", c.msg, got, rule, want)
				}
			})
		}
	}
}

func TestSSHDModes(t *testing.T) {
	if _, err := SSHD("extra"); err == nil {
		t.Error("SSHD(extra) succeeded")
	}
	if _, err := Builtin("nginx", ""); err == nil {
		t.Error("Builtin(nginx) succeeded")
	}
	f, err := Builtin("sshd", "")
	if err != nil || f.Name() != "sshd" {
		t.Fatalf("Builtin(sshd) = %v, %v", f, err)
	}
	want := "_UID=0 _SYSTEMD_UNIT=ssh.service _SYSTEMD_UNIT=sshd.service + _UID=0 _COMM=sshd _COMM=sshd-session _COMM=sshd-auth" +
		" + _UID=0 _COMM= SYSLOG_IDENTIFIER=sshd SYSLOG_IDENTIFIER=sshd-session SYSLOG_IDENTIFIER=sshd-auth"
	if got := strings.Join(f.DefaultMatch(), " "); got != want {
		t.Errorf("DefaultMatch = %q, want %q", got, want)
	}
}

// craftedFamilies are messages as sshd writes them, with %U for the client-chosen user name and %H for
// the address.
var craftedFamilies = []string{
	"Failed password for %U from %H port 22 ssh2",
	"Failed password for invalid user %U from %H port 22 ssh2",
	"Failed publickey for invalid user %U from %H port 22 ssh2: ED25519 SHA256:abcdef",
	"Failed none for invalid user %U from %H port 22 ssh2",
	"Invalid user %U from %H port 22",
	"User %U from %H not allowed because not listed in AllowUsers",
	"error: maximum authentication attempts exceeded for %U from %H port 22 ssh2 [preauth]",
	"error: maximum authentication attempts exceeded for invalid user %U from %H port 22 ssh2 [preauth]",
	"Disconnecting authenticating user %U %H port 22: Too many authentication failures [preauth]",
	"Disconnecting invalid user %U %H port 22: Too many authentication failures [preauth]",
	"error: PAM: Authentication failure for %U from %H",
	"Connection closed by authenticating user %U %H port 22 [preauth]",
	"Disconnected from invalid user %U %H port 22 [preauth]",
	"ssh_dispatch_run_fatal: Connection from invalid user %U %H port 22: invalid format [preauth]",
	"Bad protocol version identification '%U' from %H port 22",
	"Disconnecting invalid user %U %H port 22: Change of username or service not allowed: (%U,ssh-connection) -> (%U,x) [preauth]",
	"Disconnecting authenticating user %U %H port 22: Change of username or service not allowed: (%U,%U) -> (y,%U) [preauth]",
	"Received disconnect from %H port 22:3: %U: Auth fail [preauth]",
	"Received disconnect from %H port 22:14: %U [preauth]",
	"User not known to the underlying authentication module for illegal user %U from %H",
	"Authentication failure for %U from %H",
	"authentication error for %U from %H via 192.0.2.254",
	"Connection closed from invalid user %U %H port 22 [preauth]",
	"Disconnected by authenticating user %U %H port 22 [preauth]",
	"kernel: [ 1.5]: Failed password for %U from %H port 22 ssh2",
	"Accepted publickey for %U from %H port 22 ssh2: ED25519 SHA256:abcdef",
	"Accepted password for %U from %H port 22 ssh2",
	"refused connect from %U (%H)",
	"User %U not allowed because account is locked",
	"Disconnecting: Too many authentication failures for %U [preauth]",
	"Connection closed by %H port 22 [preauth]",
}

// FuzzSSHDFilter checks that the filter never panics, that a reported host is written in the message
// as an address token, and that no user name can make sshd's own lines report another host than the
// one sshd wrote.
func FuzzSSHDFilter(f *testing.F) {
	for _, c := range sshdCases {
		f.Add(c.msg, "root")
	}
	f.Add("", "x from 1.2.3.4 port 22")
	f.Add("", "x from 1.2.3.4 port 22 ssh2")
	f.Add("", "x 1.2.3.4 port 22")
	f.Add("", "x from 1.2.3.4 not allowed because not listed in AllowUsers")
	f.Add("", "x from 1.2.3.4 port 22 ssh2: ED25519 SHA256:x")
	filters := make([]*Filter, 0, 3)
	for _, m := range []string{ModeNormal, ModeDDoS, ModeAggressive} {
		fl, _ := SSHD(m)
		filters = append(filters, fl)
	}
	real := []string{"192.0.2.1", "2001:db8::1"}
	f.Fuzz(func(t *testing.T, msg, user string) {
		for _, fl := range filters {
			if r := fl.Classify(msg); r.Kind != None {
				if host := r.Addr; !host.IsValid() || !containsAddrToken(msg, host) {
					t.Fatalf("Match(%q) = %v: not an address token of the message", msg, host)
				}
			}
			for _, h := range real {
				// Each family alone, then all of them as the lines of one connection (with a process
				// id, and without): no line, and no rule that reaches back to an earlier line, may
				// report another address than the one sshd wrote.
				want := netip.MustParseAddr(h)
				withPID, noPID := NewTracker(fl), NewTracker(fl)
				for _, fam := range craftedFamilies {
					m := strings.ReplaceAll(strings.ReplaceAll(fam, "%U", user), "%H", h)
					if r := fl.Classify(m); r.Kind != None && r.Addr != want {
						t.Fatalf("user %q moved the host: Classify(%q) = %+v, want %s", user, m, r, h)
					}
					for pid, tr := range map[int]*Tracker{7: withPID, 0: noPID} {
						r := tr.Next(events.Entry{Message: m, PID: pid})
						if r.Kind != None && r.Addr.IsValid() && r.Addr != want || (r.Kind == Failure || r.Kind == Login) && !r.Addr.IsValid() {
							t.Fatalf("user %q moved the host on a connection (pid %d): Next(%q) = %+v, want %s", user, pid, m, r, h)
						}
					}
				}
				// Any message after them: its address is its own, or the connection's.
				if r := withPID.Next(events.Entry{Message: msg, PID: 7}); r.Kind != None && r.Addr.IsValid() && r.Addr != want && !containsAddrToken(msg, r.Addr) {
					t.Fatalf("Next(%q) after the families = %+v: neither the message's address nor the connection's", msg, r)
				}
			}
		}
	})
}

// containsAddrToken reports whether a is written in msg as a whole token (after a space or quote,
// before a space, quote, colon+space or the end).
func containsAddrToken(msg string, a netip.Addr) bool {
	for _, tok := range strings.FieldsFunc(msg, func(r rune) bool { return r == ' ' || r == '\'' || r == '(' || r == ')' }) {
		tok = strings.TrimSuffix(tok, ":")
		if p, ok := parseAddr(tok); ok && p == a {
			return true
		}
		// "H:14:" (no-auth-methods) and "H port P:14:" forms
		if j := strings.IndexByte(tok, ':'); j > 0 && a.Is4() {
			if p, ok := parseAddr(tok[:j]); ok && p == a {
				return true
			}
		}
	}
	return false
}

// TestHasControl compares the eight-bytes-at-a-time scan with the plain one.
func TestHasControl(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		b := make([]byte, rng.IntN(40))
		for k := range b {
			b[k] = byte(0x20 + rng.IntN(0x5f)) // printable
			if rng.IntN(20) == 0 {
				b[k] = byte(rng.IntN(256))
			}
		}
		want := false
		for _, c := range b {
			if c < 0x20 || c == 0x7f {
				want = true
			}
		}
		if got := hasControl(string(b)); got != want {
			t.Fatalf("hasControl(%q) = %v, want %v", b, got, want)
		}
	}
}
