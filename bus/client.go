package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/godbus/dbus/v5"
)

// Client calls the daemon's API. Errors the daemon answers with are *RemoteError values that match
// ErrNoSuchJail, ErrInvalidAddress, ErrNotBanned, ErrFailed, ErrAccessDenied or, when no daemon owns
// the name, ErrNotRunning, with errors.Is.
type Client struct {
	conn *dbus.Conn
	ctx  context.Context
}

// Dial connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the standard socket). It does not
// check that the daemon runs: the first call says so with ErrNotRunning.
func Dial() (*Client, error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("connect to the system bus: %w", err)
	}
	return NewClient(conn), nil
}

// DialAddress connects to the bus at address, as Dial does to the system bus.
func DialAddress(address string) (*Client, error) {
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", address, err)
	}
	return NewClient(conn), nil
}

// NewClient returns a client that calls over conn; Close closes conn.
func NewClient(conn *dbus.Conn) *Client {
	return &Client{conn: conn, ctx: context.Background()}
}

// Close closes the connection to the bus.
func (c *Client) Close() error { return c.conn.Close() }

// call calls method on the object at path, with the auto-start flag off: a client must not start the
// daemon by asking about it.
func (c *Client) call(path dbus.ObjectPath, method string, args ...any) *dbus.Call {
	return c.conn.Object(BusName, path).CallWithContext(c.ctx, method, dbus.FlagNoAutoStart, args...)
}

func (c *Client) getAll(path dbus.ObjectPath, iface string) (map[string]dbus.Variant, error) {
	var m map[string]dbus.Variant
	if err := c.call(path, propertiesInterface+".GetAll", iface).Store(&m); err != nil {
		return nil, remoteError(err)
	}
	return m, nil
}

func (c *Client) managerString(name string) (string, error) {
	var v dbus.Variant
	if err := c.call(ManagerPath, propertiesInterface+".Get", ManagerInterface, name).Store(&v); err != nil {
		return "", remoteError(err)
	}
	s, _ := v.Value().(string)
	return s, nil
}

// Version returns the daemon's version.
func (c *Client) Version() (string, error) { return c.managerString("Version") }

// Reader returns the journal reader's mode, such as "hot, 12s left" or "idle".
func (c *Client) Reader() (string, error) { return c.managerString("Reader") }

// Jails returns the names of the daemon's jails, sorted.
func (c *Client) Jails() ([]string, error) {
	var v dbus.Variant
	if err := c.call(ManagerPath, propertiesInterface+".Get", ManagerInterface, "Jails").Store(&v); err != nil {
		return nil, remoteError(err)
	}
	var paths []dbus.ObjectPath
	if err := dbus.Store([]any{v.Value()}, &paths); err != nil {
		return nil, fmt.Errorf("Jails property: %w", err)
	}
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		if n, ok := JailName(p); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Jail returns one jail's settings and counters.
func (c *Client) Jail(name string) (JailInfo, error) {
	m, err := c.getAll(JailPath(name), JailInterface)
	if err != nil {
		return JailInfo{}, c.jailError(name, err)
	}
	var j JailInfo
	fields := []struct {
		name string
		dst  any
	}{
		{"Name", &j.Name}, {"Filter", &j.Filter}, {"JournalMatch", &j.JournalMatch},
		{"FindTime", &j.FindTime}, {"BanTime", &j.BanTime}, {"MaxRetry", &j.MaxRetry},
		{"CurrentlyFailed", &j.CurrentlyFailed}, {"TotalFailed", &j.TotalFailed},
		{"CurrentlyBanned", &j.CurrentlyBanned}, {"TotalBanned", &j.TotalBanned},
	}
	for _, f := range fields {
		v, ok := m[f.name]
		if !ok {
			continue
		}
		if err := dbus.Store([]any{v.Value()}, f.dst); err != nil {
			return JailInfo{}, fmt.Errorf("jail %s: property %s: %w", name, f.name, err)
		}
	}
	return j, nil
}

// Ban bans address in jail for seconds (0: the jail's bantime) and returns the ban now in the kernel
// (BanEx). A daemon older than BanEx is asked with Ban, and the returned ban has only Address, as given.
func (c *Client) Ban(jail, address string, seconds uint64) (BanInfo, error) {
	b := BanInfo{}
	err := c.call(JailPath(jail), JailInterface+".BanEx", address, seconds).
		Store(&b.Address, &b.BannedAtUsec, &b.ExpiresUsec, &b.BanCount)
	var re *RemoteError
	if errors.As(remoteError(err), &re) && re.Name == errUnknownMethod {
		b = BanInfo{Address: address}
		err = c.call(JailPath(jail), JailInterface+".Ban", address, seconds).Err
	}
	if err != nil {
		return BanInfo{}, c.jailError(jail, err)
	}
	return b, nil
}

// Unban lifts the ban of address in jail and returns the ban lifted (UnbanEx), whose Address is the
// canonical prefix that left the kernel. A daemon older than UnbanEx is asked with Unban, and the
// returned ban has only Address, as given.
func (c *Client) Unban(jail, address string) (BanInfo, error) {
	b := BanInfo{}
	err := c.call(JailPath(jail), JailInterface+".UnbanEx", address).
		Store(&b.Address, &b.BannedAtUsec, &b.ExpiresUsec, &b.BanCount)
	var re *RemoteError
	if errors.As(remoteError(err), &re) && re.Name == errUnknownMethod {
		b = BanInfo{Address: address}
		err = c.call(JailPath(jail), JailInterface+".Unban", address).Err
	}
	if err != nil {
		return BanInfo{}, c.jailError(jail, err)
	}
	return b, nil
}

// UnbanAll lifts every ban of jail and returns how many it lifted.
func (c *Client) UnbanAll(jail string) (uint32, error) {
	var n uint32
	err := c.call(JailPath(jail), JailInterface+".UnbanAll").Store(&n)
	return n, c.jailError(jail, err)
}

// ListBans returns the active bans of jail.
func (c *Client) ListBans(jail string) ([]BanInfo, error) {
	var bans []BanInfo
	err := c.call(JailPath(jail), JailInterface+".ListBans").Store(&bans)
	return bans, c.jailError(jail, err)
}

// Reload asks the daemon to re-read its configuration.
func (c *Client) Reload() error {
	return remoteError(c.call(ManagerPath, ManagerInterface+".Reload").Err)
}

// jailError converts err as remoteError does, and reports a jail object the daemon does not have (an
// older daemon, a path that was not a jail) as ErrNoSuchJail.
// Metrics returns the daemon's Prometheus text (the Manager's Metrics method).
func (c *Client) Metrics() (string, error) {
	var text string
	if err := c.call(ManagerPath, ManagerInterface+".Metrics").Store(&text); err != nil {
		return "", remoteError(err)
	}
	return text, nil
}

func (c *Client) jailError(jail string, err error) error {
	if err == nil {
		return nil
	}
	err = remoteError(err)
	var re *RemoteError
	if errors.As(err, &re) && re.Name == errUnknownObject {
		return &RemoteError{Name: errorNamePrefix + "NoSuchJail", Message: fmt.Sprintf("no such jail: %s", jail)}
	}
	return err
}
