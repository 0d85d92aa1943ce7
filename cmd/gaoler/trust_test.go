package main

import (
	"fmt"
	"time"

	"github.com/gaoler/gaoler/bus"
)

// sampleTrust is what the fake daemon trusts: one key login in sshd.
func sampleTrust() map[string][]bus.TrustInfo {
	return map[string][]bus.TrustInfo{
		"sshd": {{Address: "192.0.2.10", UntilUsec: usec(now.Add(7*24*time.Hour - time.Hour)), AtUsec: usec(now.Add(-time.Hour)),
			User: "admin", Method: "publickey", Logins: 2}},
	}
}

func (f *fakeDaemon) Trust(jail, address string, seconds uint64) error {
	if _, err := f.Jail(jail); err != nil {
		return err
	}
	f.calls = append(f.calls, fmt.Sprintf("Trust %s %s %d", jail, address, seconds))
	if seconds == 0 {
		seconds = 7 * 86400
	}
	f.trust[jail] = append(f.trust[jail], bus.TrustInfo{Address: address, UntilUsec: usec(now.Add(time.Duration(seconds) * time.Second)),
		AtUsec: usec(now), Method: "manual"})
	return nil
}

func (f *fakeDaemon) Untrust(jail, address string) error {
	if _, err := f.Jail(jail); err != nil {
		return err
	}
	for i, t := range f.trust[jail] {
		if t.Address == address {
			f.calls = append(f.calls, fmt.Sprintf("Untrust %s %s", jail, address))
			f.trust[jail] = append(f.trust[jail][:i], f.trust[jail][i+1:]...)
			return nil
		}
	}
	return &bus.RemoteError{Name: "io.github.gaoler.Gaoler1.Error.NotTrusted", Message: "not trusted"}
}

func (f *fakeDaemon) ListTrusted(jail string) ([]bus.TrustInfo, error) {
	if _, err := f.Jail(jail); err != nil {
		return nil, err
	}
	return f.trust[jail], nil
}

func (f *fakeDaemon) TrustOf(jail, address string) (bus.TrustInfo, bool, error) {
	list, err := f.ListTrusted(jail)
	for _, t := range list {
		if t.Address == address {
			return t, true, nil
		}
	}
	return bus.TrustInfo{}, false, err
}

func (f *fakeDaemon) TrustAfterLogin(jail string) (uint64, uint32, error) {
	list, err := f.ListTrusted(jail)
	return 7 * 86400, uint32(len(list)), err
}

// backendOf serves the fake daemon's trust too (bus.TrustBackend).
func (b backendOf) Trust(jail, address string, seconds uint64, uid uint32) error {
	return b.f.Trust(jail, address, seconds)
}
func (b backendOf) Untrust(jail, address string) error { return b.f.Untrust(jail, address) }
func (b backendOf) ListTrusted(jail string) ([]bus.TrustInfo, error) {
	return b.f.ListTrusted(jail)
}
func (b backendOf) TrustOf(jail, address string) ([]bus.TrustInfo, error) {
	t, ok, err := b.f.TrustOf(jail, address)
	if !ok {
		return nil, err
	}
	return []bus.TrustInfo{t}, err
}
func (b backendOf) TrustSettings(jail string) (uint64, error) {
	after, _, err := b.f.TrustAfterLogin(jail)
	return after, err
}
