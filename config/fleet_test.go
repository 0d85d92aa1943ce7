package config

import (
	"reflect"
	"testing"
	"time"
)

func TestFleet(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": `
[jail.sshd]
enabled = true
[fleet]
servers = ["nats://192.0.2.1:4222", "tls://192.0.2.2:4222"]
credentials = "/etc/gaoler/fleet.creds"
host = "web-1"
jails = ["sshd"]
max_bantime = "2d"
peer_rate = 20
`})
	if errs != nil {
		t.Fatal(errs)
	}
	want := Fleet{
		Servers:     []string{"nats://192.0.2.1:4222", "tls://192.0.2.2:4222"},
		Credentials: "/etc/gaoler/fleet.creds",
		Host:        "web-1",
		Jails:       []string{"sshd"},
		MaxBanTime:  48 * time.Hour,
		Replicas:    2,
		PeerRate:    20,
	}
	if !reflect.DeepEqual(cfg.Fleet, want) {
		t.Fatalf("fleet = %+v\nwant    %+v", cfg.Fleet, want)
	}
	if !cfg.Fleet.Enabled() || !cfg.Fleet.Shares("sshd") || cfg.Fleet.Shares("nginx") {
		t.Fatal("Enabled/Shares wrong")
	}
}

func TestFleetAbsent(t *testing.T) {
	cfg, errs := load(t, map[string]string{"gaoler.toml": "[jail.sshd]\nenabled = true\n"})
	if errs != nil {
		t.Fatal(errs)
	}
	f := cfg.Fleet
	if f.Enabled() || f.Host == "" || f.MaxBanTime != DefaultFleetMaxBanTime || f.PeerRate != DefaultFleetPeerRate || !f.Shares("sshd") {
		t.Fatalf("default fleet = %+v", f)
	}
	if !hostRE.MatchString(f.Host) {
		t.Fatalf("default host %q is not a valid fleet host name", f.Host)
	}
}

func TestFleetErrors(t *testing.T) {
	_, errs := load(t, map[string]string{"gaoler.toml": `[jail.sshd]
enabled = true
[fleet]
servers = ["http://x:1", "nats://u:p@x:1"]
credentials = "fleet.creds"
tls_cert = "/c.pem"
host = "a.b"
jails = ["nope"]
max_bantime = "0"
replicas = 9
color = 1
`})
	want := []string{
		`gaoler.toml:3:2: fleet: tls_cert and tls_key go together: set both or neither`,
		`gaoler.toml:4:12: fleet.servers[0]: bad server "http://x:1": write nats://host:port (or tls://, ws://, wss://)`,
		`gaoler.toml:4:26: fleet.servers[1]: server "nats://u:p@x:1": put no user or password in the URL; use credentials`,
		`gaoler.toml:5:1: fleet.credentials: must be an absolute path, not "fleet.creds"`,
		`gaoler.toml:7:1: fleet.host: bad host name "a.b": use up to 63 letters, digits and '-', starting with a letter or digit`,
		`gaoler.toml:8:10: fleet.jails[0]: no such jail "nope"`,
		`gaoler.toml:9:1: fleet.max_bantime: must be longer than zero`,
		`gaoler.toml:10:1: fleet.replicas: must be from 1 to 5, not 9`,
		`gaoler.toml:11:1: fleet.color: unknown key (known here: servers, credentials, tls_cert, tls_key, tls_ca, host, jails, max_bantime, replicas, peer_rate)`,
	}
	if !reflect.DeepEqual(errs, want) {
		for _, e := range errs {
			t.Log(e)
		}
		t.Fatalf("errors differ from want")
	}
}
