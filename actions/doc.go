// Package actions runs what a ban or an unban should set off besides the firewall: a program (exec), a
// mail to the admin with a whois report and the journal lines behind the ban (mail), an HTTP POST to a
// chat or incident system (webhook), and an abuse report (abuseipdb).
//
// The daemon hands events to a Set through an events.Hub: every configured action is a subscriber of
// its own, with its own bounded queue and goroutine, so a slow, failing or hung action never delays a
// ban, the journal loop or another action. When an action's queue is full, its oldest event is dropped
// and the drop logged. Each run has a timeout; an exec action's timeout kills its whole process group.
// Restored bans (at start, after a flushed table) run nothing: they are not new bans.
//
// No action ever involves a shell: a command is an argument vector whose placeholders are replaced in
// place, never split or re-parsed; mail headers are written here with CR and LF stripped from every
// value; whois answers are cleaned (package whois) before they reach a mail.
//
// Every outcome is one structured journal entry (events.MsgActionSent, MsgActionFailed,
// MsgActionDropped, MsgActionTimedOut) with the action's name and type, the event, jail and address.
//
// The package owns no ban: it reads events and reports outcomes, and imports neither the jail engine
// nor the firewall.
package actions
