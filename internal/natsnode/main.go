// Command natsnode runs one JetStream-enabled nats-server node in the foreground, for the fleet's
// end-to-end tests and `make demo-fleet`: each test host (a network namespace) runs one, and they
// form a cluster through their routes. It is a test tool, not part of gaoler; production fleets run
// Synadia's nats-server 2.12 or newer.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	name := flag.String("name", "n1", "server name")
	host := flag.String("host", "127.0.0.1", "address to listen on (clients and routes)")
	port := flag.Int("port", 4222, "client port")
	clusterPort := flag.Int("cluster-port", 6222, "route port; 0: no cluster")
	routes := flag.String("routes", "", "comma-separated nats-route://host:port of the other nodes")
	store := flag.String("store", "", "JetStream storage folder")
	flag.Parse()
	o := &server.Options{
		ServerName: *name, Host: *host, Port: *port, JetStream: true, StoreDir: *store,
		NoSigs: true, Logtime: true,
	}
	if *clusterPort > 0 {
		o.Cluster = server.ClusterOpts{Name: "gaoler-fleet", Host: *host, Port: *clusterPort}
		if *routes != "" {
			o.Routes = server.RoutesFromStr(*routes)
		}
	}
	s, err := server.NewServer(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsnode:", err)
		os.Exit(1)
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsnode: not ready after 30s")
		os.Exit(1)
	}
	fmt.Printf("natsnode %s ready on %s:%d (routes %s)\n", *name, *host, *port, strings.TrimSpace(*routes))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
}
