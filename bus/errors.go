package bus

import (
	"errors"
	"strings"

	"github.com/godbus/dbus/v5"
)

// Errors that a Backend returns and a Client reports, each carried on the bus under its own name,
// io.github.gaoler.Gaoler1.Error.<Name>. Match them with errors.Is.
var (
	// ErrNoSuchJail is io.github.gaoler.Gaoler1.Error.NoSuchJail: no jail of that name is configured.
	ErrNoSuchJail = errors.New("no such jail")
	// ErrInvalidAddress is io.github.gaoler.Gaoler1.Error.InvalidAddress: not an IP address or prefix.
	ErrInvalidAddress = errors.New("invalid address")
	// ErrNotBanned is io.github.gaoler.Gaoler1.Error.NotBanned: the address has no active ban there.
	ErrNotBanned = errors.New("not banned")
	// ErrInvalidConfig is io.github.gaoler.Gaoler1.Error.InvalidConfig: Reload found errors in the
	// configuration and kept the running one.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrFailed is io.github.gaoler.Gaoler1.Error.Failed: any other failure of the daemon.
	ErrFailed = errors.New("failed")
	// ErrNotRunning is what a Client returns when nobody owns BusName on the bus.
	ErrNotRunning = errors.New("daemon not running (no owner of " + BusName + " on the system bus)")
	// ErrAccessDenied is what a Client returns when the bus's policy refused the call.
	ErrAccessDenied = errors.New("access denied")
)

// errorNames maps each sentinel to the last element of its D-Bus error name.
var errorNames = []struct {
	err  error
	name string
}{
	{ErrNoSuchJail, "NoSuchJail"},
	{ErrInvalidAddress, "InvalidAddress"},
	{ErrNotBanned, "NotBanned"},
	{ErrNotTrusted, "NotTrusted"},
	{ErrInvalidConfig, "InvalidConfig"},
	{ErrFailed, "Failed"},
}

// dbusError turns a Backend error into the D-Bus error sent to the caller, with the error's own text
// as the message.
func dbusError(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	name := "Failed"
	for _, e := range errorNames {
		if errors.Is(err, e.err) {
			name = e.name
			break
		}
	}
	return dbus.NewError(errorNamePrefix+name, []any{err.Error()})
}

// RemoteError is an error the daemon or the bus answered with. Error returns the message; errors.Is
// matches the sentinel of the same name (ErrNoSuchJail for io.github.gaoler.Gaoler1.Error.NoSuchJail,
// ErrNotRunning for org.freedesktop.DBus.Error.ServiceUnknown, and so on).
type RemoteError struct {
	Name    string // the D-Bus error name
	Message string // the error's text, as the daemon or the bus wrote it
}

// Error returns the message, or the name when there is none.
func (e *RemoteError) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Message
}

// Is reports whether target is the sentinel that e's name stands for.
func (e *RemoteError) Is(target error) bool {
	switch e.Name {
	case errServiceUnknown, errNameHasNoOwner:
		return target == ErrNotRunning
	case errAccessDenied, errInteractiveRequired:
		return target == ErrAccessDenied
	}
	if name, ok := strings.CutPrefix(e.Name, errorNamePrefix); ok {
		for _, s := range errorNames {
			if s.name == name {
				return target == s.err
			}
		}
	}
	return false
}

// remoteError turns an error from godbus into a *RemoteError when the other side answered with a D-Bus
// error, and leaves other errors (a broken connection) as they are.
func remoteError(err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		return newRemoteError(de)
	}
	var dep *dbus.Error
	if errors.As(err, &dep) && dep != nil {
		return newRemoteError(*dep)
	}
	return err
}

func newRemoteError(de dbus.Error) *RemoteError {
	e := &RemoteError{Name: de.Name}
	if len(de.Body) > 0 {
		e.Message, _ = de.Body[0].(string)
	}
	return e
}
