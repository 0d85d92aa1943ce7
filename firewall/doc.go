// Package firewall owns gaoler's packet filter: the nftables table that holds the bans, and a "none"
// backend that keeps the same bookkeeping without touching any firewall.
//
// The nftables layout (SPEC.md, "Firewall") is one table of family inet, by default "gaoler", owned by
// gaoler alone, with four sets per jail:
//
//	table inet gaoler {
//		set sshd_v4 { type ipv4_addr; flags timeout; }                # single addresses (hash)
//		set sshd_v4_net { type ipv4_addr; flags interval,timeout; }   # prefix bans (interval)
//		set sshd_v6 { type ipv6_addr; flags timeout; }
//		set sshd_v6_net { type ipv6_addr; flags interval,timeout; }
//		chain input {
//			type filter hook input priority filter; policy accept;
//			meta nfproto ipv4 meta l4proto tcp th dport 22 ip saddr @sshd_v4 counter reject with tcp reset comment "gaoler jail sshd ipv4"
//			meta nfproto ipv4 meta l4proto tcp th dport 22 ip saddr @sshd_v4_net counter reject with tcp reset comment "gaoler jail sshd ipv4 prefixes"
//			meta nfproto ipv6 meta l4proto tcp th dport 22 ip6 saddr @sshd_v6 counter reject with tcp reset comment "gaoler jail sshd ipv6"
//			meta nfproto ipv6 meta l4proto tcp th dport 22 ip6 saddr @sshd_v6_net counter reject with tcp reset comment "gaoler jail sshd ipv6 prefixes"
//		}
//	}
//
// A ban is a set element whose timeout is the ban's remaining time, so the kernel expires it even when
// gaolerd is not running. Single addresses, nearly every ban, go to the hash sets: the kernel commits a
// change to a hash set in the same time at 100,000 elements as at none, whereas an interval set is a
// tree whose commit grows with its size (about 20 ms at 100,000 elements on Linux 6.x). Prefix bans (an
// IPv6 /64, a manual 198.51.100.0/24) go to the interval sets, which stay small.
//
// Every ban the engine holds must be in force for as long as it lasts, also while a wider, shorter
// ban overlaps it. An address always has its own element in the hash set, inside a banned prefix or
// not: the sets do not conflict. The kernel refuses overlapping intervals within one set, so the
// package keeps a mirror of each jail (prefix -> expiry) and applies two rules to prefixes before
// anything reaches the kernel: a prefix inside a wanted prefix that lasts at least as long is left out
// (the wider one blocks it), and one that outlasts it is shadowed: it waits in the mirror and enters
// the kernel in the transaction that follows the wider one's unban or expiry.
//
// Setup adopts the bans it finds in the kernel, also from gaoler 0.1's layout, where "<jail>_v4" and
// "<jail>_v6" were interval sets holding addresses and prefixes alike: their elements keep their
// remaining time and move to the current sets in the transaction that rebuilds the table.
//
// Bans and unbans are queued and sent by Flush in one netlink transaction. Extending a ban deletes and
// re-adds its element in that transaction, because kernels before 6.12 keep the old timeout when an
// existing element is added again.
//
// The package does not decide who is banned (that is the jails package) and never touches any table but
// its own. Close leaves the table and its bans in the kernel: they expire by themselves, and the next
// gaolerd picks them up; DeleteTable removes everything explicitly.
package firewall
