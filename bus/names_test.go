package bus

import (
	"errors"
	"fmt"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestJailPath(t *testing.T) {
	tests := []struct {
		name string
		path dbus.ObjectPath
	}{
		{"sshd", "/io/github/gaoler/Gaoler1/jail/sshd"},
		{"nginx-auth", "/io/github/gaoler/Gaoler1/jail/nginx_2dauth"},
		{"0day", "/io/github/gaoler/Gaoler1/jail/_30day"},
		{"a_b.c", "/io/github/gaoler/Gaoler1/jail/a_5fb_2ec"},
		{"", "/io/github/gaoler/Gaoler1/jail/_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := JailPath(tt.name)
			if p != tt.path {
				t.Errorf("JailPath(%q) = %s, want %s", tt.name, p, tt.path)
			}
			if !p.IsValid() {
				t.Errorf("JailPath(%q) = %s is not a valid object path", tt.name, p)
			}
			name, ok := JailName(p)
			if !ok || name != tt.name {
				t.Errorf("JailName(%s) = %q, %v, want %q", p, name, ok, tt.name)
			}
		})
	}
	for _, p := range []dbus.ObjectPath{ManagerPath, JailPathPrefix, JailPathPrefix + "/a/b", JailPathPrefix + "/a_2"} {
		if name, ok := JailName(p); ok {
			t.Errorf("JailName(%s) = %q, true; want false", p, name)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err      error
		name     string
		sentinel error
	}{
		{fmt.Errorf("jail %q: %w", "x", ErrNoSuchJail), "io.github.gaoler.Gaoler1.Error.NoSuchJail", ErrNoSuchJail},
		{fmt.Errorf("%w: %q", ErrInvalidAddress, "x"), "io.github.gaoler.Gaoler1.Error.InvalidAddress", ErrInvalidAddress},
		{fmt.Errorf("x: %w", ErrNotBanned), "io.github.gaoler.Gaoler1.Error.NotBanned", ErrNotBanned},
		{fmt.Errorf("%w: a.toml:1:1: x: bad", ErrInvalidConfig), "io.github.gaoler.Gaoler1.Error.InvalidConfig", ErrInvalidConfig},
		{errors.New("disk full"), "io.github.gaoler.Gaoler1.Error.Failed", ErrFailed},
	}
	for _, tt := range tests {
		de := dbusError(tt.err)
		if de.Name != tt.name {
			t.Errorf("dbusError(%v).Name = %s, want %s", tt.err, de.Name, tt.name)
		}
		re := remoteError(*de)
		if !errors.Is(re, tt.sentinel) {
			t.Errorf("remoteError(%s) does not match %v", de.Name, tt.sentinel)
		}
		if re.Error() != tt.err.Error() {
			t.Errorf("remoteError(%s).Error() = %q, want %q", de.Name, re.Error(), tt.err.Error())
		}
	}
	for _, name := range []string{errServiceUnknown, errNameHasNoOwner} {
		if err := remoteError(dbus.Error{Name: name}); !errors.Is(err, ErrNotRunning) {
			t.Errorf("%s does not match ErrNotRunning", name)
		}
	}
	if err := remoteError(dbus.Error{Name: errAccessDenied}); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("AccessDenied does not match ErrAccessDenied")
	}
}
