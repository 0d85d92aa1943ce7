// Package bus is gaoler's D-Bus API: the server that exports the daemon's jails, bans and counters on the
// system bus under the name io.github.gaoler.Gaoler1, and the Client that the gaoler command uses to
// talk to it.
//
// The server owns the bus side only: object paths, introspection, properties, signals, the mapping of
// errors to D-Bus error names, and reconnecting when the bus goes away. Everything it reports or changes
// goes through a Backend, which the daemon implements and serialises onto its main loop; the package does
// not import the jail engine, the firewall or the journal.
//
// The objects are:
//
//	/io/github/gaoler/Gaoler1               io.github.gaoler.Gaoler1.Manager
//	/io/github/gaoler/Gaoler1/jail/<name>   io.github.gaoler.Gaoler1.Jail
//
// where <name> is the jail's name escaped as systemd escapes object path labels (sd_bus_path_encode):
// "nginx-auth" becomes "nginx_2dauth". Every object also has org.freedesktop.DBus.Introspectable,
// org.freedesktop.DBus.Properties and org.freedesktop.DBus.Peer. Who may call what is decided by the
// bus itself, from the policy file packaging/dbus/io.github.gaoler.Gaoler1.conf: root may call
// everything; any user may introspect, read properties, call the listings (ListBans, ListBansEx,
// ListBansPage, ListBanOrigins, ListTrusted, TrustOf, Metrics, Fleet) and Peer, and receive signals.
//
// Failures are D-Bus errors named io.github.gaoler.Gaoler1.Error.NoSuchJail, .InvalidAddress,
// .NotBanned, .InvalidConfig (Reload kept the running configuration) and .Failed (anything else), each
// with a message for humans.
//
// Counters change with every failure, so their PropertiesChanged signals are coalesced: a jail sends at
// most one per DefaultCoalesce interval, carrying only the properties that changed. The Manager's
// Reader property (the journal reader's mode) changes with time and is never announced; read it.
//
// From a shell:
//
//	busctl introspect io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1/jail/sshd
//	busctl get-property io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1/jail/sshd \
//	    io.github.gaoler.Gaoler1.Jail CurrentlyBanned
//	busctl call io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1/jail/sshd \
//	    io.github.gaoler.Gaoler1.Jail Ban st 192.0.2.7 3600
//	busctl call io.github.gaoler.Gaoler1 /io/github/gaoler/Gaoler1/jail/sshd \
//	    io.github.gaoler.Gaoler1.Jail BanEx st ::ffff:192.0.2.7 3600
//	sttu "192.0.2.7" 1764064800000000 1764068400000000 1
//	busctl monitor io.github.gaoler.Gaoler1
//
// Ban(s address, t seconds) replies with nothing, as the SPEC has it; BanEx, with the same arguments,
// replies with the ban now in the kernel (s prefix, t banned_at_usec, t expires_usec, u ban_count),
// whose prefix is the canonical one banned. Ban and BanEx refuse with InvalidAddress a prefix with host
// bits set or one that holds an address the jail ignores, with a message that says which. UnbanEx(s
// address) is Unban that replies as BanEx does, with the ban lifted: ::ffff:192.0.2.7 and
// 192.0.2.7/32 lift 192.0.2.7, an address inside a wider running ban lifts that ban.
//
// The Manager's signals Banned and Unbanned are the SPEC's; BannedEx and UnbannedEx follow each of
// them for the same events, with who made the ban (filter and its rule, manual and the caller's uid,
// a fleet peer and its name) and, for an unban, who lifted it (signals.go has their arguments). Announce
// sends both of a pair; a restored ban sends neither. ListBansEx lists the running bans with the
// same origins, for a subscriber to start from, and Client.WatchBans follows the signals.
package bus
