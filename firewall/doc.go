// Package firewall owns gaoler's packet filter: the nftables table that holds the bans, and a "none"
// backend that keeps the same bookkeeping without touching any firewall.
//
// The nftables layout (SPEC.md, "Firewall") is one table of family inet, by default "gaoler", owned by
// gaoler alone:
//
//	table inet gaoler {
//		set sshd_v4 { type ipv4_addr; flags interval,timeout; }
//		set sshd_v6 { type ipv6_addr; flags interval,timeout; }
//		chain input {
//			type filter hook input priority filter; policy accept;
//			meta nfproto ipv4 meta l4proto tcp th dport 22 ip saddr @sshd_v4 counter reject with tcp reset comment "gaoler jail sshd ipv4"
//			meta nfproto ipv6 meta l4proto tcp th dport 22 ip6 saddr @sshd_v6 counter reject with tcp reset comment "gaoler jail sshd ipv6"
//		}
//	}
//
// A ban is a set element whose timeout is the ban's remaining time, so the kernel expires it even when
// gaolerd is not running. The sets are interval sets so that a jail can ban a whole IPv6 /64; the kernel
// refuses overlapping intervals, so the package keeps a mirror of each set (prefix -> expiry) and applies
// two rules before anything reaches the kernel: a prefix ban absorbs the bans inside it (they are
// removed in the same transaction) and a ban inside an already banned prefix is a no-op.
//
// Bans and unbans are queued and sent by Flush in one netlink transaction. Extending a ban deletes and
// re-adds its element in that transaction, because kernels before 6.12 keep the old timeout when an
// existing element is added again.
//
// The package does not decide who is banned (that is the jails package) and never touches any table but
// its own. Close leaves the table and its bans in the kernel: they expire by themselves, and the next
// gaolerd picks them up; DeleteTable removes everything explicitly.
package firewall
