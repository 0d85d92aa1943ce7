// Package jails decides who is banned. It owns the filters that turn a journal message into a failure
// from an address, the per-jail failure windows, the ban decisions with their history (repeat
// offenders, IPv6 prefixes, ignore lists), and the state the daemon checkpoints with its journal cursor.
// It does not read the journal, talk to the kernel or the bus: entries come in through Engine.Handle,
// bans go out through the small Firewall and Events interfaces the daemon implements.
//
// # Filters
//
// A Filter is matched against the MESSAGE field of an entry. Which entries reach it at all is the
// journal match (Filter.DefaultMatch, or the jail's journal_match), and for the built-in sshd filter
// that match rests on fields journald sets itself and a client cannot forge (_UID=0 with _SYSTEMD_UNIT or
// _COMM), so `logger -t sshd "Failed password for root from <victim> ..."` from an unprivileged user never
// reaches the filter.
//
// The built-in sshd filter (SSHD) has three modes, named as fail2ban names them. "normal" matches
// rejected credentials and refused users: Failed <method>, Invalid user, not allowed (AllowUsers,
// DenyUsers, groups, a locked account), ROOT LOGIN REFUSED, sshd's PAM errors (with or without
// "error: PAM: "), MaxAuthTries and its Too many authentication failures, tcp wrappers' "refused
// connect from NAME (H)", a client that gives up after its authentication failed ("Received
// disconnect from H port P:3: ...: Auth fail", JSch) and a client that asks for another user
// ("Change of username or service not allowed"). "ddos" adds connections that end before they
// authenticate: no identification string, bad protocol version, banner exchange, timeouts (also
// OpenSSH 9.8's "Timeout before authentication for connection from H to H2, pid = N"), fatal
// protocol errors, connections closed, reset or disconnected in the [preauth] phase, anonymous or
// while authenticating as a named or invalid user, and the "kex_exchange_identification: ..." and
// "Read from socket failed: Connection reset by peer" lines of a client that never identified
// itself. "aggressive" is ddos plus algorithm negotiation failures (also the old "Unable to negotiate
// a ..." and "no matching ... found: ..."), "no authentication methods", and every failed public key
// of a valid user. A "kernel: [ N.N]: " that some journals put before a message, and Solaris' "[ID
// N facility.level] ", are set aside. LogLevel VERBOSE's "Connection from H port P on ..." and Red
// Hat's "SSH: Server;Ltype: ...;Remote: H-P;..." are no failures, but name a connection's address.
//
// It is written by hand, not with regular expressions: a message is dispatched on its first bytes,
// and then taken apart from its end, where sshd writes the address. sshd prints user names, client
// version strings and key comments verbatim, so an attacker who logs in as
// 'x from 192.0.2.1 port 22' can put any text before the address; every rule therefore locates the
// address by the text sshd writes after it (" port N ssh2", " not allowed because ...", the end of the
// message), or by a fixed prefix with no attacker text before the address. Where sshd itself writes
// attacker text on both sides of the address (certificate IDs, hostbased client names, the user names
// of a user change) and two readings are possible, the line is not counted rather than guessed. Host
// names (UseDNS) are never a failure: only an address can be banned. "::ffff:a.b.c.d" is the IPv4
// address a.b.c.d. sshd escapes control characters in everything it logs (OpenSSH's do_log runs
// strnvis), so a message that holds a raw one (a newline, NUL, escape, tab or DEL, other than
// trailing line ends) was not written by sshd and is never a failure, nor a login.
//
// # What counts as one failure
//
// maxretry counts rejected attempts, so that maxretry = 3 bans the third bad password or bad user
// name, not the second. sshd often reports one attempt on two lines, and some lines only make sense
// with the lines before them, so the sshd filter follows each connection (a Tracker: the engine keeps
// one per jail, and `gaoler test-filter` uses one the same way). A connection is the sshd process that
// wrote the line (events.Entry.PID, journald's _PID, which a client cannot forge; on text, the pid
// of the syslog tag "sshd[PID]:"). With no process id (PID 0), lines that name the client's address
// and port are grouped by both, and lines that name neither are read alone. On one connection:
//   - each "Failed <method> for [invalid user] U from H port P ssh2" is one failure, one rejected
//     credential, except the cases below;
//   - "Invalid user U from H", "User U from H not allowed because ..." and "User U not allowed because
//     account is locked" are one failure each, at once; the first Failed line (or sshd's PAM error)
//     after one of them is the same attempt and adds nothing, later ones count. So a connection that
//     only sends a bad user name and leaves costs one failure, as does one bad user name with one
//     password;
//   - sshd's "error: PAM: Authentication failure for U from H" (also "User not known to the
//     underlying authentication module") and "Failed keyboard-interactive/pam ..." are written for the
//     same attempt, in either order: together they are one failure;
//   - the pam_unix line "pam_unix(sshd:auth): authentication failure; ... rhost=H" is never a failure:
//     sshd writes "Failed password" for the same attempt;
//   - "Failed publickey" of a valid user is no failure in normal and ddos modes: a client with several
//     keys in its agent offers them in turn and sshd logs each refused one (as fail2ban does, gh-1263).
//     If the connection then fails otherwise, that failure counts;
//   - MaxAuthTries is written as "maximum authentication attempts exceeded for U from H ..." and then
//     "Disconnecting ... Too many authentication failures": together one failure, and none if the
//     attempt that reached the limit was already counted (a Failed password), so it only costs
//     something to a connection that sprayed public keys;
//   - the address of a line that names none (the locked account, the old "Disconnecting: Too many
//     authentication failures [for U]", kex_exchange_identification, Read from socket failed, the old
//     negotiation failures) is the one sshd wrote for the same connection; a failure
//     reported before the connection's address is known counts at the first line that names it (a
//     disconnect, say), and never if no line does;
//   - a connection that names more than one user (OpenSSH itself refuses a change of user with
//     "Change of username or service not allowed", a failure) counts each later public key of a valid
//     user, and even its "Accepted" line, as a failure (rule "several-users"): credential stuffing
//     across accounts; such an Accepted line is no login;
//   - in ddos mode a connection that ends before authentication (closed, reset, timed out, or a
//     client that gave up with "Auth fail") is one failure if nothing was counted on it yet, and none
//     if it was: the failures before it already count the connection;
//   - every other line the filter matches is one failure.
//
// A line that reports an attempt already counted is a Repeat (test-filter shows it as repeated).
// A connection ends with the lines sshd writes when it goes (a disconnect, "Connection closed by
// ...", a timeout: at most one of the last kind); a later line with the same process id or, without
// one, the same address and port (a client may reuse its source port) starts a new connection. The
// Tracker remembers at most DefaultMaxConns connections per jail and forgets one it has not heard
// from for ConnIdle, or whose process id comes back with another address; its connections are part
// of the checkpoint (JailState.Conns), so a restart neither counts an attempt twice nor loses one.
// OpenSSH 10 authenticates in a process of its own, sshd-auth; its lines are trusted like sshd's,
// and the rules above apply within the process that wrote them.
//
// Logins. Filter.Classify reads a message alone as a Failure, a Login or None. The sshd filter reports
// "Accepted <method> for U from H port P ssh2[: INFO]" as a Login (address, user, method), found
// as its failures are, so a crafted name cannot move the address; Engine.Handle passes logins to
// the function given with WithLogins. Config-defined filters report no logins.
//
// Success lines ("Accepted ...", "session opened"), normal disconnects ("Received disconnect ... 11:
// disconnected by user", "Disconnected from user U H port P") and connections closed after
// authentication are never failures, in any mode.
//
// Config-defined filters (NewFilter) are Go regular expressions (RE2: linear time, no catastrophic
// backtracking) in which <HOST> stands for an IPv4 or IPv6 address capture. They are matched against
// the whole message, unanchored: write ^ and $ yourself, and anchor <HOST> to text the program writes
// after it, for the reason above. Each line is read alone. A MESSAGE may hold newlines (any sender
// can write them): it is still one text, ^ and $ are its start and end, not a line's, unless the
// pattern starts with (?m); '.' does not match a newline unless (?s) lets it, while \s does; <HOST>
// never holds one. So an unanchored pattern may match on a second line of a message, and
// ^...$ refuses a message with a line after the one it describes.
//
// # Windows and bans
//
// The Engine keeps, per jail, a sliding window for each offending address (or, for IPv6 with
// ipv6_prefix < 128, for each /N): a ban falls when maxretry failures lie within findtime, judged on the
// entries' own timestamps, so a backlog is judged as it happened. A ban clears the window. The number
// of tracked windows per jail is capped (Settings.MaxTracked, DefaultMaxTracked when zero); past the cap
// the window that failed least recently is forgotten. The cap is sized (DefaultMaxTracked) so that a
// flood of distinct addresses too large for it is also too large to matter: see
// BenchmarkTrackedAddressBytes for the memory each window costs, and TestFloodIsNotAnEvasion.
//
// With ipv6_prefix longer than 64, the distinct failing addresses of each IPv6 /64 are counted too
// (Settings.IPv6SubnetLimit): an attacker rotating through its /64 gets the /64 banned after that many
// addresses, so rotation neither escapes the jail nor pushes other offenders' windows out. A /64 that
// holds an ignored address is never banned; its further new addresses are banned one by one.
//
// NearBan tells the journal reader whether some window is one failure from its ban: only then is
// reading the next entry within milliseconds worth the reader's polling.
//
// # Trust after login
//
// A login (the sshd filter's Accepted line, which Handle gives to Engine.Login, or a logind session
// the daemon reports with Engine.Login) makes each jail that takes it trust the address for its
// TrustSettings.After: its window is cleared, its failures until then are not counted, and a wider
// ban that would hold it falls back to the offender's own address. Which jails take a login, which
// methods earn trust, how a manual ban overrides it and how the trust is capped and checkpointed is
// in trust.go and gaoler.toml(5).
//
// The Engine holds no locks: one goroutine at a time uses it (the daemon guards it with its mutex).
package jails
