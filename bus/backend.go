package bus

// Backend is what the server exports: the daemon implements it. The server calls it from godbus's
// goroutines, possibly several at once, so the implementation serialises the calls (the daemon hands
// them to its main loop). Errors that callers branch on are returned as, or wrapping, ErrNoSuchJail,
// ErrInvalidAddress and ErrNotBanned; any other error reaches the caller as
// io.github.gaoler.Gaoler1.Error.Failed with the error's text.
type Backend interface {
	// Version is the daemon's version string.
	Version() string
	// Reader describes the journal reader's mode for humans, such as "hot, 12s left" or "idle".
	Reader() string
	// JailNames lists the jails in name order.
	JailNames() []string
	// Jail returns one jail's settings and counters, or ErrNoSuchJail.
	Jail(name string) (JailInfo, error)
	// Ban bans address in jail for seconds (0: the jail's bantime), through the same path as an
	// automatic ban, and returns the ban now in the kernel: its Address is the canonical prefix that
	// was banned (::ffff:192.0.2.7 is banned as 192.0.2.7, a bare IPv6 address as its /ipv6_prefix),
	// or the wider running ban that already covers address. It returns ErrNoSuchJail, or
	// ErrInvalidAddress for what is no address, a prefix with host bits set, or a prefix that holds an
	// address the jail ignores (the error's text says which).
	Ban(jail, address string, seconds uint64) (BanInfo, error)
	// Unban lifts a ban, and forgives the address's failures so far. It returns the ban lifted, whose
	// Address is the canonical prefix that left the kernel (::ffff:192.0.2.7 and 192.0.2.7/32 lift
	// 192.0.2.7; an address inside a running wider ban lifts that prefix), or ErrNoSuchJail,
	// ErrInvalidAddress or ErrNotBanned.
	Unban(jail, address string) (BanInfo, error)
	// UnbanAll lifts every ban of jail ("" for every jail) and returns how many it lifted.
	UnbanAll(jail string) (uint32, error)
	// ListBans returns the active bans of jail ("" for every jail), sorted.
	ListBans(jail string) ([]BanInfo, error)
	// Reload re-reads the configuration, keeping bans, failure windows and history. A configuration
	// with errors is ErrInvalidConfig (wrapping the errors), and the running one stays.
	Reload() error
	// Metrics returns the Prometheus text the metrics endpoint serves (see package metrics).
	Metrics() (string, error)
}

// JailInfo is what the bus shows of one jail: its settings (times in seconds) and its counters.
type JailInfo struct {
	Name, Filter    string
	JournalMatch    []string
	FindTime        uint64
	BanTime         uint64
	MaxRetry        uint32
	CurrentlyFailed uint32
	TotalFailed     uint64
	CurrentlyBanned uint32
	TotalBanned     uint64
}

// BanInfo is one active ban as ListBans returns it: D-Bus type (sttu). Address is an address or a
// prefix ("192.0.2.7", "2001:db8::/64"); times are microseconds since the Unix epoch.
type BanInfo struct {
	Address      string
	BannedAtUsec uint64
	ExpiresUsec  uint64
	BanCount     uint32
}
