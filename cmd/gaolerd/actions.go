package main

import (
	"context"

	"github.com/gaoler/gaoler/actions"
	"github.com/gaoler/gaoler/daemon"
	"github.com/gaoler/gaoler/metrics"
)

// actionsPlugin runs the [action.NAME] tables the jails name after their bans and unbans (package
// actions): each action a subscriber of the daemon's events with its own queue, outcomes in the
// journal and in the metrics.
var actionsPlugin = daemon.Plugin{
	Name: "actions",
	Start: func(ctx context.Context, h *daemon.Host) error {
		rep := &actions.Reporter{Log: h.Log()}
		h.AddMetrics(func(s *metrics.Snapshot) {
			for _, c := range rep.Counts() {
				s.Actions = append(s.Actions, metrics.Action{Name: c.Name,
					Sent: c.Sent, Failed: c.Failed, Dropped: c.Dropped, TimedOut: c.TimedOut})
			}
		})
		return actions.Start(ctx, h, rep)
	},
}
