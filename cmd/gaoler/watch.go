package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gaoler/gaoler/bus"
)

// watchAPI is the part of the daemon's API that follows bans as they happen (the BannedEx and
// UnbannedEx signals); bus.Client has it.
type watchAPI interface {
	WatchBans(ctx context.Context, handle func(bus.BanSignal)) error
}

// watchJSON is one line of `gaoler watch --json`.
type watchJSON struct {
	Time      string  `json:"time"`  // when gaoler received it, RFC 3339
	Event     string  `json:"event"` // "ban" or "unban"
	Jail      string  `json:"jail"`
	Prefix    string  `json:"prefix"`
	BannedAt  string  `json:"banned_at,omitempty"`  // a ban: RFC 3339
	ExpiresAt string  `json:"expires_at,omitempty"` // a ban: RFC 3339
	BanCount  uint32  `json:"ban_count"`
	Reason    string  `json:"reason,omitempty"` // an unban: why
	Origin    string  `json:"origin"`           // who made the ban: "filter", "manual", "peer"
	UID       *uint32 `json:"uid,omitempty"`
	Peer      string  `json:"peer,omitempty"`
	Rule      string  `json:"rule,omitempty"`
	By        string  `json:"by,omitempty"` // an unban: who lifted it: "manual", "peer", "gaolerd"
	ByUID     *uint32 `json:"by_uid,omitempty"`
	ByPeer    string  `json:"by_peer,omitempty"`
}

// watch is `gaoler watch [JAIL] [--json]`: bans and unbans as the daemon makes them, with who made
// them, until interrupted.
func (e *env) watch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object a line")
	args, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(args, 0, 1, "watch [JAIL] [--json]"); err != nil {
		return err
	}
	d, err := e.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	w, ok := d.(watchAPI)
	if !ok {
		return errors.New("watch: this client cannot receive the daemon's signals")
	}
	// Say at once when no daemon runs, or the jail does not exist, rather than wait in silence.
	if len(args) == 1 {
		if _, err := d.Jail(args[0]); err != nil {
			return explain(err, args[0], "")
		}
	} else if _, err := d.Version(); err != nil {
		return explain(err, "", "")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.WatchBans(ctx, func(b bus.BanSignal) {
		if len(args) == 1 && b.Jail != args[0] {
			return
		}
		if *asJSON {
			writeJSONLine(e.stdout, e.watchRow(b))
			return
		}
		fmt.Fprintln(e.stdout, e.watchLine(b))
	})
}

// watchLine is a signal as one line for people:
//
//	2026-11-25 10:00:48  ban    sshd  192.0.2.7  until 2026-11-25 11:00:48 (ban #2), by peer h1
//	2026-11-25 10:05:00  unban  sshd  192.0.2.7  (manual), banned by peer h1, lifted by manual (uid 0)
func (e *env) watchLine(b bus.BanSignal) string {
	at := e.now().In(e.loc).Format(timeLayout)
	made := whoText(b.Origin, b.UID, b.Peer, b.Rule)
	if !b.Unban {
		return fmt.Sprintf("%s  ban    %s  %s  until %s (ban #%d), by %s", at, b.Jail, b.Prefix,
			usecTime(b.ExpiresUsec, e.loc).Format(timeLayout), b.BanCount, made)
	}
	return fmt.Sprintf("%s  unban  %s  %s  (%s), banned by %s, lifted by %s", at, b.Jail, b.Prefix, b.Reason,
		made, whoText(b.By, b.ByUID, b.ByPeer, ""))
}

func (e *env) watchRow(b bus.BanSignal) watchJSON {
	r := watchJSON{
		Time: e.now().In(e.loc).Format(time.RFC3339), Event: "ban", Jail: b.Jail, Prefix: b.Prefix,
		BanCount: b.BanCount, Reason: b.Reason, Origin: b.Origin, Peer: b.Peer, Rule: b.Rule,
		By: b.By, ByPeer: b.ByPeer,
	}
	if b.Origin == "manual" {
		uid := b.UID
		r.UID = &uid
	}
	if b.Unban {
		r.Event = "unban"
		if b.By == "manual" {
			uid := b.ByUID
			r.ByUID = &uid
		}
	} else {
		r.BannedAt = usecTime(b.BannedAtUsec, e.loc).Format(time.RFC3339)
		r.ExpiresAt = usecTime(b.ExpiresUsec, e.loc).Format(time.RFC3339)
	}
	return r
}

// whoText names who made or lifted a ban: "filter (rule failed)", "manual (uid 0)", "peer h1",
// "gaolerd".
func whoText(origin string, uid uint32, peer, rule string) string {
	switch {
	case origin == "filter" && rule != "":
		return "filter (rule " + rule + ")"
	case origin == "manual":
		return originText(origin, peer, &uid)
	}
	return originText(origin, peer, nil)
}
