package testenv

import (
	"testing"
	"time"
)

func TestNFTDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3h", 3 * time.Hour, true},
		{"2h59m59s999ms", 3*time.Hour - time.Millisecond, true},
		{"2d3h", 51 * time.Hour, true},
		{"820ms", 820 * time.Millisecond, true},
		{"", 0, false},
		{"3x", 0, false},
		{"3h junk", 0, false},
	} {
		got, err := NFTDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NFTDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNFTElement(t *testing.T) {
	listing := `table inet gaoler {
	set sshd_v4 {
		type ipv4_addr
		flags interval,timeout
		elements = { 192.0.2.7 timeout 3h expires 2h59m59s998ms, 10.0.0.0/8 timeout 1h expires 3h,
			     192.0.2.70 timeout 10m expires 9m }
	}
}`
	for _, tc := range []struct {
		elem             string
		timeout, expires time.Duration
		ok               bool
	}{
		{"192.0.2.7", 3 * time.Hour, 3*time.Hour - 2*time.Millisecond, true},
		{"10.0.0.0/8", time.Hour, 3 * time.Hour, true},
		{"192.0.2.70", 10 * time.Minute, 9 * time.Minute, true},
		{"2.0.2.7", 0, 0, false},
	} {
		timeout, expires, ok := NFTElement(listing, tc.elem)
		if timeout != tc.timeout || expires != tc.expires || ok != tc.ok {
			t.Errorf("NFTElement(%q) = %v, %v, %v; want %v, %v, %v", tc.elem, timeout, expires, ok, tc.timeout, tc.expires, tc.ok)
		}
	}
}
