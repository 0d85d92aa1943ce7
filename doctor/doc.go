// Package doctor checks that bans can work on this host and says plainly what is wrong: the daemon
// runs, its nftables table, chains, sets and rules are in the kernel and hooked, the jails' rules
// count what they block, the journal holds recent entries that each jail's match reads, the ports a
// jail covers are those sshd listens on, and published container ports are covered.
//
// The checks read the host through a Host (the real one runs `nft -j -t list ruleset`, reads the
// journal and /proc, and asks the daemon over the bus; tests pass fakes) and the configuration; they
// change nothing. `gaoler doctor` prints the findings and exits 0 when all is well, 1 otherwise.
//
// What it does not own: fixing anything, or the daemon's own self-healing (gaolerd rebuilds a removed
// table within seconds; the doctor reports what it sees at the moment it looks).
package doctor
