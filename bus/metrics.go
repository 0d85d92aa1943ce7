package bus

import "github.com/godbus/dbus/v5"

// Metrics returns the Prometheus text of the metrics endpoint, for `gaoler metrics` and node_exporter's
// textfile collector. It holds counts only, no addresses, so any user may call it.
func (m managerMethods) Metrics() (string, *dbus.Error) {
	text, err := m.s.b.Metrics()
	if err != nil {
		return "", dbusError(err)
	}
	return text, nil
}
