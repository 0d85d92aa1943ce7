package bus

import (
	"github.com/godbus/dbus/v5/introspect"

	"github.com/gaoler/gaoler/events"
)

// The Manager's signals. Banned(s jail, s address, t expires_usec, u ban_count) and Unbanned(s jail,
// s address, s reason) are the SPEC's and do not change. BannedEx and UnbannedEx, sent right after
// them for the same events, extend the SPEC with who made the ban and why, as the Ex methods extend
// theirs:
//
//	BannedEx(s jail, s prefix, t banned_at_usec, t expires_usec, u ban_count,
//	         s origin, u uid, s peer, s rule)
//	UnbannedEx(s jail, s prefix, s reason, u ban_count,
//	           s origin, u uid, s peer, s rule, s by, u by_uid, s by_peer)
//
// origin is who made the ban: "filter" (this host's journal; rule is the filter rule that matched
// last), "manual" (an admin over the bus; uid is the caller's uid) or "peer" (a fleet peer's ban
// applied here; peer is the peer's host name). uid means something only for "manual", peer only for
// "peer", and rule is "" but for "filter". In UnbannedEx, origin, uid, peer and rule describe the ban
// that was lifted, and by, by_uid and by_peer who lifted it: "manual" (reason "manual" or "unban-all",
// with the caller's uid), "peer" (the peer lifted its ban, reason "peer") or "gaolerd" (the daemon
// itself: reason "expired" or "jail removed").
//
// The arguments are flat, every origin a string at a fixed position, so that a match rule can select
// them without parsing: arg5='peer' picks the peers' bans from BannedEx, arg8='manual' the unbans an
// admin made from UnbannedEx.
const (
	bannedExSignalName   = ManagerInterface + ".BannedEx"
	unbannedExSignalName = ManagerInterface + ".UnbannedEx"
)

// ByDaemon is UnbannedEx's by when no one asked for the unban: the ban expired, or its jail was
// removed by a reload.
const ByDaemon = "gaolerd"

var managerSignals = []introspect.Signal{
	{Name: "Banned", Args: []introspect.Arg{
		arg("jail", "s", ""), arg("address", "s", ""), arg("expires_usec", "t", ""), arg("ban_count", "u", ""),
	}},
	{Name: "Unbanned", Args: []introspect.Arg{
		arg("jail", "s", ""), arg("address", "s", ""), arg("reason", "s", ""),
	}},
	{Name: "BannedEx", Args: []introspect.Arg{
		arg("jail", "s", ""), arg("prefix", "s", ""), arg("banned_at_usec", "t", ""), arg("expires_usec", "t", ""),
		arg("ban_count", "u", ""), arg("origin", "s", ""), arg("uid", "u", ""), arg("peer", "s", ""), arg("rule", "s", ""),
	}},
	{Name: "UnbannedEx", Args: []introspect.Arg{
		arg("jail", "s", ""), arg("prefix", "s", ""), arg("reason", "s", ""), arg("ban_count", "u", ""),
		arg("origin", "s", ""), arg("uid", "u", ""), arg("peer", "s", ""), arg("rule", "s", ""),
		arg("by", "s", ""), arg("by_uid", "u", ""), arg("by_peer", "s", ""),
	}},
}

// Announce emits the signals of a ban or an unban that is in the kernel now: Banned and BannedEx, or
// Unbanned and UnbannedEx. A restored ban (events.OriginRestored) was announced when it was new and
// sends nothing. Like Banned, it never waits for the bus and does nothing while the bus is away.
func (s *Server) Announce(ev events.Event) {
	if ev.Origin.Kind == events.OriginRestored {
		return
	}
	conn := s.current()
	if conn == nil {
		return
	}
	addr := ev.Address()
	o := ev.Maker()
	rule := ""
	if o.Kind == events.OriginFilter {
		rule = ev.Rule
	}
	switch ev.Kind {
	case events.Ban:
		expires := uint64(ev.Expires.UnixMicro())
		conn.Emit(ManagerPath, bannedSignalName, ev.Jail, addr, expires, uint32(ev.Count))
		conn.Emit(ManagerPath, bannedExSignalName, ev.Jail, addr, uint64(ev.BannedAt.UnixMicro()), expires,
			uint32(ev.Count), o.Kind.String(), o.UID, o.Peer, rule)
	case events.Unban:
		by := ev.Origin.Kind.String()
		if ev.Origin.Kind == events.OriginFilter {
			by = ByDaemon
		}
		conn.Emit(ManagerPath, unbannedSignalName, ev.Jail, addr, ev.Reason)
		conn.Emit(ManagerPath, unbannedExSignalName, ev.Jail, addr, ev.Reason, uint32(ev.Count),
			o.Kind.String(), o.UID, o.Peer, rule, by, ev.Origin.UID, ev.Origin.Peer)
	}
}
