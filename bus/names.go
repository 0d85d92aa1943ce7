package bus

import (
	"strings"

	"github.com/godbus/dbus/v5"
)

// Names of the service on the bus, fixed by the SPEC.
const (
	// BusName is the well-known name the daemon owns on the system bus.
	BusName = "io.github.gaoler.Gaoler1"
	// ManagerPath is the object path of the manager object.
	ManagerPath = dbus.ObjectPath("/io/github/gaoler/Gaoler1")
	// JailPathPrefix is the parent of every jail object.
	JailPathPrefix = dbus.ObjectPath("/io/github/gaoler/Gaoler1/jail")
	// ManagerInterface is the interface of the manager object.
	ManagerInterface = "io.github.gaoler.Gaoler1.Manager"
	// JailInterface is the interface of each jail object.
	JailInterface = "io.github.gaoler.Gaoler1.Jail"

	propertiesInterface    = "org.freedesktop.DBus.Properties"
	introspectableIntf     = "org.freedesktop.DBus.Introspectable"
	propertiesChangedName  = propertiesInterface + ".PropertiesChanged"
	bannedSignalName       = ManagerInterface + ".Banned"
	unbannedSignalName     = ManagerInterface + ".Unbanned"
	nameLostSignalName     = "org.freedesktop.DBus.NameLost"
	errorNamePrefix        = "io.github.gaoler.Gaoler1.Error."
	errServiceUnknown      = "org.freedesktop.DBus.Error.ServiceUnknown"
	errNameHasNoOwner      = "org.freedesktop.DBus.Error.NameHasNoOwner"
	errUnknownObject       = "org.freedesktop.DBus.Error.UnknownObject"
	errUnknownMethod       = "org.freedesktop.DBus.Error.UnknownMethod"
	errAccessDenied        = "org.freedesktop.DBus.Error.AccessDenied"
	errInteractiveRequired = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
)

// JailPath returns the object path of the jail called name. The name is escaped as systemd's
// sd_bus_path_encode escapes a label: ASCII letters and digits stay (except a leading digit), every
// other byte becomes "_" and two lower-case hex digits, and the empty name becomes "_".
func JailPath(name string) dbus.ObjectPath {
	return JailPathPrefix + "/" + dbus.ObjectPath(escapeLabel(name))
}

// JailName returns the name of the jail whose object path is p, and false if p is not a jail's path.
func JailName(p dbus.ObjectPath) (string, bool) {
	label, ok := strings.CutPrefix(string(p), string(JailPathPrefix)+"/")
	if !ok || label == "" || strings.Contains(label, "/") {
		return "", false
	}
	return unescapeLabel(label)
}

func escapeLabel(s string) string {
	if s == "" {
		return "_"
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if alpha || digit && i > 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func unescapeLabel(s string) (string, bool) {
	if s == "_" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
