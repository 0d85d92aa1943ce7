package main

import "fmt"

// metrics prints the daemon's Prometheus text, as the metrics socket serves it: for node_exporter's
// textfile collector (`gaoler metrics > /var/lib/prometheus/node-exporter/gaoler.prom.$$ && mv ...`),
// or a look without the socket enabled.
func (e *env) metrics(args []string) error {
	if err := wantArgs(args, 0, 0, "metrics"); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	text, err := c.Metrics()
	if err != nil {
		return explain(err, "", "")
	}
	fmt.Fprint(e.stdout, text)
	return nil
}
