package main

import (
	"fmt"

	"github.com/gaoler/gaoler/bus"
)

// Why answers as a daemon would for 192.0.2.7 (banned now, and once before by hand) and
// 198.51.100.4 (not banned: ignored in one jail, trusted in the other).
func (f *fakeDaemon) Why(address, jail string) (bus.WhyReply, error) {
	f.calls = append(f.calls, fmt.Sprintf("Why %s %q", address, jail))
	if f.err != nil {
		return bus.WhyReply{}, f.err
	}
	if jail != "" {
		if _, ok := f.jails[jail]; !ok {
			return bus.WhyReply{}, fmt.Errorf("%w: %s", bus.ErrNoSuchJail, jail)
		}
	}
	r := bus.WhyReply{Address: address, Bans: []bus.WhyBan{}, NotBanned: []bus.WhyNot{}}
	uid := uint32(1000)
	switch address {
	case "192.0.2.7":
		r.Bans = append(r.Bans, bus.WhyBan{
			Jail: "sshd", Prefix: "192.0.2.7", Active: true, BannedAt: now.Add(-48e9), Expires: now.Add(552e9), Count: 2,
			Rule: "invalid-user", Origin: "filter",
			Entries: []bus.WhyLine{
				{Time: now.Add(-50e9), Cursor: "s=a;i=1", Message: "Invalid user admin from 192.0.2.7 port 4242", PID: 812},
				{Time: now.Add(-49e9), Cursor: "s=a;i=2", Message: "Invalid user oracle\x1b[2J from 192.0.2.7 port 4243", PID: 813},
			},
		}, bus.WhyBan{
			Jail: "sshd", Prefix: "192.0.2.0/24", BannedAt: now.Add(-3600e9), Expires: now.Add(-600e9),
			Ended: now.Add(-1800e9), EndReason: "manual", Count: 1, Origin: "manual", UID: &uid, Entries: []bus.WhyLine{},
		})
		if jail == "" {
			r.NotBanned = append(r.NotBanned, bus.WhyNot{Jail: "nginx-auth"})
		}
	case "198.51.100.4":
		if jail == "" || jail == "nginx-auth" {
			r.NotBanned = append(r.NotBanned, bus.WhyNot{Jail: "nginx-auth", Ignored: "ignoreip 198.51.100.0/24"})
		}
		if jail == "" || jail == "sshd" {
			r.NotBanned = append(r.NotBanned, bus.WhyNot{Jail: "sshd", Trusted: &bus.WhyTrust{
				Until: now.Add(7 * 24 * 3600e9), At: now.Add(-3600e9), User: "alice", Method: "publickey", Logins: 1}})
		}
	}
	return r, nil
}

// backendOf serves the fake daemon's Why too (bus.WhyBackend).
func (b backendOf) Why(address, jail string) (bus.WhyReply, error) { return b.f.Why(address, jail) }
