package daemon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/gaoler/gaoler/jails"
)

// TestPluginLoginTrusts: a login a plugin reports (logind's sessions) trusts its address in the jails
// whose trust_methods take it, checkpointed before Login returns; the address's failures then ban
// nothing, while another address is banned as before.
func TestPluginLoginTrusts(t *testing.T) {
	d, fw, _ := testDaemon(t, sshdJail+"trust_methods = [\"publickey\", \"logind\"]\n")
	var host *Host
	stop := runLoop(t, d, Plugin{Name: "logind", Start: func(ctx context.Context, h *Host) error {
		host = h
		return nil
	}})
	a := netip.MustParseAddr("192.0.2.30")
	trusts, err := host.Login(jails.LoginEvent{Addr: a, User: "admin", Method: jails.MethodLogind, At: time.Now(), Service: "sshd"})
	if err != nil || len(trusts) != 1 || trusts[0].Jail != "sshd" {
		t.Fatalf("Login = %+v, %v", trusts, err)
	}
	var dirty bool
	d.do(func() { dirty = d.dirty })
	if dirty {
		t.Error("the trust was not checkpointed before Login returned")
	}
	handle(d, failures("192.0.2.30", 5))
	handle(d, failures("192.0.2.31", 3))
	if fw.inKernel("sshd", "192.0.2.30") {
		t.Error("a trusted address was banned")
	}
	if !fw.inKernel("sshd", "192.0.2.31") {
		t.Error("an address with no login was not banned")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Login(jails.LoginEvent{Addr: a, Method: jails.MethodLogind, At: time.Now(), Service: "sshd"}); err == nil {
		t.Error("Login after stop succeeded")
	}
}
