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
// The built-in sshd filter (SSHD) has three modes, named as fail2ban names them: "normal", "ddos" (adds
// connections dropped before authentication: no identification string, bad banner, timeouts, fatal
// protocol errors, connections closed or reset in the [preauth] phase by an anonymous client) and
// "aggressive" (ddos plus algorithm negotiation failures, "no authentication methods", clients that
// give up while authenticating as a named or invalid user, and failed public keys of valid users). It
// is written by hand, not with regular expressions: a message is dispatched on its first bytes, and
// then taken apart from its end, where sshd writes the address. sshd prints user names, client
// version strings and key comments verbatim, so an attacker who logs in as
// 'x from 192.0.2.1 port 22' can put any text before the address; every rule therefore locates the
// address by the text sshd writes after it (" port N ssh2", " not allowed because ...", the end of the
// message), or by a fixed prefix with no attacker text before the address. Where sshd itself writes
// attacker text on both sides of the address (certificate IDs, hostbased client names) and two readings
// are possible, the line is not counted rather than guessed. Host names (UseDNS) are never a failure:
// only an address can be banned. "::ffff:a.b.c.d" is the IPv4 address a.b.c.d.
//
// What counts as one failure. maxretry counts matched lines; the sshd filter matches the lines that
// report a refusal and leaves out those that repeat a refusal sshd reports on its own line:
//   - each "Failed <method> for [invalid user] U from H port P ssh2" is one failure (one rejected
//     credential); "Failed publickey" for a valid user is counted only in aggressive mode, because a
//     client with several keys in its agent offers them in turn and sshd logs each refused one (as
//     fail2ban does, gh-1263);
//   - "Invalid user U from H" is one failure: the login name does not exist; a password guessed for it
//     then costs one more ("Failed password for invalid user ...");
//   - "User U from H not allowed because ..." and "ROOT LOGIN REFUSED FROM H" are one failure each;
//   - reaching MaxAuthTries is logged by sshd as two lines, "maximum authentication attempts exceeded
//     for U from H" and "Disconnecting authenticating user U H port P: Too many authentication
//     failures"; each is one failure (this is what catches a client that sprays public keys);
//   - PAM: the pam_unix line "pam_unix(sshd:auth): authentication failure; ... rhost=H" is NOT a
//     failure: sshd logs "Failed password for ..." for the same attempt, and counting both would make
//     maxretry=5 ban after three passwords. sshd's own "error: PAM: Authentication failure for U from H"
//     is a failure: on systems that authenticate through keyboard-interactive/PAM it is written next to
//     "Failed keyboard-interactive/pam ...", so there each rejected password counts twice;
//   - "kex_exchange_identification: ..." and "Read from socket failed" carry no address and are never
//     a failure; in ddos mode the "Connection closed by H port P [preauth]" or "banner exchange:
//     Connection from H ..." that sshd writes for the same connection is.
//
// Logins. Filter.Classify reads a message as a Failure, a Login or None. The sshd filter reports
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
// after it, for the reason above.
//
// # Windows and bans
//
// The Engine keeps, per jail, a sliding window for each offending address (or, for IPv6 with
// ipv6_prefix < 128, for each /N): a ban falls when maxretry failures lie within findtime, judged on the
// entries' own timestamps, so a backlog is judged as it happened. A ban clears the window. The number
// of tracked windows per jail is capped (Settings.MaxTracked, DefaultMaxTracked when zero); past the cap
// the window that failed least recently is forgotten. See BenchmarkTrackedAddressBytes for the memory
// each one costs.
//
// The Engine holds no locks: one goroutine at a time uses it (the daemon guards it with its mutex).
package jails
