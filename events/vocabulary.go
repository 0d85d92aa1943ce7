package events

// The MESSAGE_IDs of gaolerd's own journal entries. They are fixed forever: scripts filter on them
// (journalctl MESSAGE_ID=...), `gaoler log` reads them, and packaging/catalog/gaoler.catalog explains each
// one to `journalctl -x`.
const (
	MsgStarted          = "61a385ffb21f4b869834b9f02831d782"
	MsgStopped          = "fe307b7c18fd4fda99000c30ccb072d3"
	MsgReloaded         = "5315be068cb94b7a80ec6cf403af2b53"
	MsgConfigError      = "9bc0e233712f45208795aaba951114d5"
	MsgBan              = "b115fae2c6c44d2885a6d2f4a1572bdc"
	MsgUnban            = "4457d62bde5247c99d7a0a257e8c4e0b"
	MsgFailure          = "39481af06893453786a1b3adaa85020c"
	MsgFirewallRestored = "54ff4a2776d543e2ad0d7809d9cd02b4"
	MsgTrusted          = "93267cc25c9843d584757116bfc13d37" // an address trusted after a login (or extended)
	MsgUntrusted        = "92891e50519141a0aac515721c0eb52b" // a trust after login ended

	// Fleet mode (fleet/): the cluster connection, and bans published, applied from peers, refused.
	MsgFleetConnected    = "136d54db763043e881d0b87082ccd145"
	MsgFleetDisconnected = "fb77d2f6a65c486ca8b6b1b0dd3a7ffe"
	MsgFleetPublished    = "b87c39af103247ebab9b83085c5681d3"
	MsgFleetApplied      = "7e41497e8fc7441fa2c1b0c90f9a1a9b"
	MsgFleetRefused      = "1b90d7509b454024a6c59cb9086c5465"
)

// The MESSAGE_IDs of the actions' outcomes: one entry per action run (or per digest mail), with
// FieldAction, FieldActionType, FieldEvent and, for one event, FieldJail and FieldAddress.
const (
	MsgActionSent     = "56dce26d0c83485ab63c580e17d5ec3f"
	MsgActionFailed   = "d310a4ea8ca8425a851bca68a52ba7ba"
	MsgActionDropped  = "96fde3188daa4589957d16fdbb5f4da1"
	MsgActionTimedOut = "ff312e9f4d1046e7b96d17361a917a82"
)

// EventIDs lists every MESSAGE_ID above, for readers that want all of gaolerd's events.
var EventIDs = []string{
	MsgStarted, MsgStopped, MsgReloaded, MsgConfigError,
	MsgBan, MsgUnban, MsgFailure, MsgFirewallRestored,
	MsgTrusted, MsgUntrusted,
	MsgActionSent, MsgActionFailed, MsgActionDropped, MsgActionTimedOut,
	MsgFleetConnected, MsgFleetDisconnected, MsgFleetPublished, MsgFleetApplied, MsgFleetRefused,
}

// The structured fields gaolerd adds to its entries.
const (
	FieldJail        = "GAOLER_JAIL"
	FieldAddress     = "GAOLER_ADDRESS"
	FieldBanTime     = "GAOLER_BANTIME"      // seconds
	FieldExpires     = "GAOLER_EXPIRES_USEC" // microseconds since the epoch
	FieldBanCount    = "GAOLER_BAN_COUNT"
	FieldReason      = "GAOLER_REASON"       // why an unban happened
	FieldRule        = "GAOLER_RULE"         // which filter rule matched a failure, or made a ban
	FieldCount       = "GAOLER_COUNT"        // how many bans a restore re-installed
	FieldUser        = "GAOLER_USER"         // who logged in (trust after login)
	FieldMethod      = "GAOLER_METHOD"       // how: sshd's method, "logind" or "manual"
	FieldAction      = "GAOLER_ACTION"       // the [action.NAME] an outcome is about
	FieldActionType  = "GAOLER_ACTION_TYPE"  // exec, mail, webhook or abuseipdb
	FieldEvent       = "GAOLER_EVENT"        // ban or unban
	FieldError       = "GAOLER_ERROR"        // why an action failed
	FieldDropped     = "GAOLER_DROPPED"      // how many events an action's full queue dropped
	FieldPeer        = "GAOLER_PEER"         // fleet: the peer host a ban came from
	FieldOrigin      = "GAOLER_ORIGIN"       // ban, unban: who made the ban (filter, manual, peer)
	FieldUID         = "GAOLER_UID"          // ban, unban: the bus caller's uid of a manual ban
	FieldByUID       = "GAOLER_BY_UID"       // unban: the bus caller's uid of a manual unban
	FieldServer      = "GAOLER_FLEET_SERVER" // fleet: the NATS server connected to
	SyslogIdentifier = "gaolerd"
)
