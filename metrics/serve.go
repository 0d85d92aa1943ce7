package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// SocketName is the FileDescriptorName of gaolerd-metrics.socket: the listening socket systemd passes
// to gaolerd for the endpoint.
const SocketName = "metrics"

// DefaultPort is the port gaolerd-metrics.socket listens on (127.0.0.1 only). Prometheus' list of
// default port allocations for exporters filled the range 9100-9999, and new exporters are given ports
// above 10000; 10191 is among those, clear of the ports the list names.
const DefaultPort = 10191

// Listener returns the metrics socket systemd passed (LISTEN_FDS with the name SocketName), or nil when
// there is none: the endpoint is off unless the admin enables gaolerd-metrics.socket.
func Listener() (net.Listener, error) {
	byName, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("metrics socket: %w", err)
	}
	lns := byName[SocketName]
	if len(lns) == 0 {
		return nil, nil
	}
	for _, extra := range lns[1:] {
		extra.Close() // one endpoint; a socket unit with two ListenStream= lines serves the first
	}
	return lns[0], nil
}

// Serve answers scrapes of reg on ln (GET /metrics, and / with a pointer to it) until ctx ends.
// Scrapes are served one at a time, each within a few seconds: a scraper cannot pile up work in the
// daemon.
func Serve(ctx context.Context, ln net.Listener, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		MaxRequestsInFlight: 1,
		Timeout:             5 * time.Second,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "gaolerd: metrics at /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics endpoint: %w", err)
	}
	return nil
}

// Text gathers reg once and returns the Prometheus text format, as `gaoler metrics` prints it.
func Text(reg *prometheus.Registry) (string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return "", fmt.Errorf("metrics: %w", err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return "", fmt.Errorf("metrics: %w", err)
		}
	}
	return b.String(), nil
}
