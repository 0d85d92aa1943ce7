package main

import (
	"context"

	"github.com/gaoler/gaoler/actions"
	"github.com/gaoler/gaoler/daemon"
)

// actionsPlugin runs the [action.NAME] tables the jails name after their bans and unbans (package
// actions): each action a subscriber of the daemon's events with its own queue, outcomes in the
// journal.
var actionsPlugin = daemon.Plugin{
	Name: "actions",
	Start: func(ctx context.Context, h *daemon.Host) error {
		return actions.Start(ctx, h, h.Log())
	},
}
