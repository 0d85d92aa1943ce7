package config

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// PortRange is an inclusive range of port numbers; a single port has From == To.
type PortRange struct{ From, To uint16 }

// builtinPorts names the services gaoler's users protect most, so that a config works on a host with
// no /etc/services (a minimal container).
var builtinPorts = map[string]uint16{
	"ssh": 22, "ftp": 21, "ftp-data": 20, "telnet": 23, "smtp": 25, "domain": 53, "http": 80,
	"pop3": 110, "imap": 143, "imap2": 143, "https": 443, "submissions": 465, "smtps": 465,
	"submission": 587, "imaps": 993, "pop3s": 995, "mysql": 3306, "postgresql": 5432,
	"http-alt": 8080, "sieve": 4190, "ldap": 389, "ldaps": 636, "rdp": 3389, "ms-wbt-server": 3389,
	"openvpn": 1194, "sip": 5060, "sip-tls": 5061, "xmpp-client": 5222, "xmpp-server": 5269,
}

// servicesFile is read for port names not in builtinPorts; a variable so tests can point elsewhere.
var servicesFile = "/etc/services"

var (
	servicesOnce sync.Once
	services     map[string]uint16
)

// loadServices reads servicesFile once: "name port/proto [aliases...]", comments after '#'.
func loadServices() map[string]uint16 {
	servicesOnce.Do(func() {
		services = make(map[string]uint16)
		f, err := os.Open(servicesFile)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fields := strings.Fields(line)
			if len(fields) < 2 {
				continue
			}
			num, _, _ := strings.Cut(fields[1], "/")
			n, err := strconv.ParseUint(num, 10, 16)
			if err != nil || n == 0 {
				continue
			}
			for _, name := range append(fields[:1:1], fields[2:]...) {
				if _, dup := services[name]; !dup {
					services[name] = uint16(n)
				}
			}
		}
	})
	return services
}

// portNumber resolves one port: a number 1..65535 or a service name.
func portNumber(s string) (uint16, error) {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("bad port %q: a port is a number from 1 to 65535 or a service name", s)
		}
		return uint16(n), nil
	}
	if n, ok := builtinPorts[s]; ok {
		return n, nil
	}
	if n, ok := loadServices()[s]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown port name %q (not built in, not in %s)", s, servicesFile)
}

// ParsePort resolves a port as written in a config: "ssh", "22", or a range "8000-8080" (also
// "8000:8080", as fail2ban writes it). A name containing '-' ("http-alt") is looked up whole first.
func ParsePort(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return PortRange{}, fmt.Errorf("empty port")
	}
	if n, err := portNumber(s); err == nil {
		return PortRange{n, n}, nil
	} else if !strings.ContainsAny(s, "-:") {
		return PortRange{}, err
	}
	sep := strings.IndexAny(s, ":")
	if sep < 0 {
		sep = strings.LastIndex(s, "-")
	}
	from, err := portNumber(s[:sep])
	if err != nil {
		return PortRange{}, err
	}
	to, err := portNumber(s[sep+1:])
	if err != nil {
		return PortRange{}, err
	}
	if from > to {
		return PortRange{}, fmt.Errorf("bad port range %q: %d is above %d", s, from, to)
	}
	return PortRange{from, to}, nil
}
