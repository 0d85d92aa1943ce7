// Package events is gaoler's event vocabulary, shared by the daemon, its subscribers and the client.
//
// It holds two things:
//   - the MESSAGE_IDs and fields of gaolerd's own journal entries (vocabulary.go), which scripts filter
//     on and `gaoler log` reads back: the client imports this package, never the daemon;
//   - the in-process events (a ban, an unban) with their origin and the journal entries behind them
//     (event.go), and the Hub that hands them to the daemon's subscribers (the journal log, the bus
//     signals, actions, metrics, the fleet), each through its own bounded queue, off the daemon's lock.
//
// It imports nothing of gaoler's: every other package may import it.
package events
