package main

import (
	"context"
	"time"

	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/gaoler/gaoler/daemon"
	"github.com/gaoler/gaoler/jails"
	"github.com/gaoler/gaoler/logind"
)

// logindRecheck is how often the logind plugin looks whether a jail wants logind's sessions, while
// none does (a reload may ask for them).
const logindRecheck = 30 * time.Second

// logindPlugin follows systemd-logind's remote sessions (package logind) while a jail's
// trust_methods take them: each session with an address, open at start or new, is a login seen now,
// and the jails that take it trust its host.
var logindPlugin = daemon.Plugin{
	Name: "logind",
	Start: func(ctx context.Context, h *daemon.Host) error {
		h.Go(func() {
			for !h.Config().WantsLogind() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(logindRecheck):
				}
			}
			logind.Watch(ctx, logind.Options{
				Notice: func(msg string) { h.Log().Event("", sdjournal.PriNotice, nil, "%s", msg) },
				Login: func(s logind.Session) {
					// An error means the daemon is stopping: the session is seen again at the next start.
					_, _ = h.Login(jails.LoginEvent{Addr: s.Addr, User: s.User, Method: jails.MethodLogind,
						At: time.Now(), Service: s.Service})
				},
			})
		})
		return nil
	},
}
