package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gaoler/gaoler/journal"
)

// System is the Host gaoler doctor runs on.
type System struct {
	// NFT is the command that prints the ruleset as JSON without set elements; nil means
	// nft -j -t list ruleset.
	NFT []string
	// JournalDirectory is [journal] directory: "" reads this host's journal.
	JournalDirectory string
	// DaemonInfo asks the running daemon about itself (over the bus).
	DaemonInfo func() (Daemon, error)
	// NetNS is the network namespace whose sshd is looked at, as a path to its nsfs file;
	// "" means the doctor's own (/proc/self/ns/net).
	NetNS string
	// Proc is where procfs is mounted; "" means /proc.
	Proc string
}

// Daemon asks the running daemon.
func (s *System) Daemon() (Daemon, error) {
	if s.DaemonInfo == nil {
		return Daemon{}, errors.New("no way to reach the daemon")
	}
	return s.DaemonInfo()
}

// Ruleset runs nft and parses what it prints.
func (s *System) Ruleset() (*Ruleset, error) {
	args := s.NFT
	if len(args) == 0 {
		args = []string{"nft", "-j", "-t", "list", "ruleset"}
	}
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return ParseRuleset(out)
}

// JournalEntries counts the entries since since that match selects, and those that name ident as
// their SYSLOG_IDENTIFIER.
func (s *System) JournalEntries(match []string, ident string, since time.Time, max int) (int, int, error) {
	m, err := journal.ParseMatch(match)
	if err != nil {
		return 0, 0, err
	}
	o := journal.Options{Directory: s.JournalDirectory, Matches: []journal.Match{m}, SinceUsec: uint64(since.UnixMicro()), Hold: -1}
	n, err := journal.Count(o, max)
	if err != nil || n > 0 || ident == "" {
		return n, 0, err
	}
	lm, err := journal.ParseMatch([]string{"SYSLOG_IDENTIFIER=" + ident})
	if err != nil {
		return 0, 0, err
	}
	o.Matches = []journal.Match{lm}
	loose, err := journal.Count(o, max)
	return n, loose, err
}

// Listeners returns the TCP ports that processes named comm listen on, among those in the network
// namespace NetNS: their listening sockets, found through /proc/PID/fd and /proc/PID/net/tcp{,6}.
// Reading other processes' descriptors needs root.
func (s *System) Listeners(comm string) ([]uint16, error) {
	proc := s.Proc
	if proc == "" {
		proc = "/proc"
	}
	nsPath := s.NetNS
	if nsPath == "" {
		nsPath = filepath.Join(proc, "self/ns/net")
	}
	want, err := inode(nsPath)
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	dirs, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var ports []uint16
	denied := false
	for _, d := range dirs {
		pid := d.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		name, err := os.ReadFile(filepath.Join(proc, pid, "comm"))
		if err != nil || strings.TrimSpace(string(name)) != comm {
			continue
		}
		if ino, err := inode(filepath.Join(proc, pid, "ns/net")); err != nil || ino != want {
			denied = denied || errors.Is(err, os.ErrPermission)
			continue
		}
		socks, err := socketInodes(filepath.Join(proc, pid, "fd"))
		if err != nil {
			denied = denied || errors.Is(err, os.ErrPermission)
			continue
		}
		for _, file := range []string{"net/tcp", "net/tcp6"} {
			listening, err := listeningPorts(filepath.Join(proc, pid, file))
			if err != nil {
				continue // no IPv6 in this kernel, say
			}
			for ino, port := range listening {
				if socks[ino] && !slices.Contains(ports, port) {
					ports = append(ports, port)
				}
			}
		}
	}
	if len(ports) == 0 && denied {
		return nil, fmt.Errorf("reading %s's sockets: %w", comm, os.ErrPermission)
	}
	slices.Sort(ports)
	return ports, nil
}

func inode(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no inode", path)
	}
	return st.Ino, nil
}

// socketInodes returns the inodes of the sockets among a process's descriptors.
func socketInodes(fdDir string) (map[string]bool, error) {
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			out[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return out, nil
}

// listeningPorts reads a /proc/net/tcp-style table: socket inode -> local port, for sockets in LISTEN.
func listeningPorts(path string) (map[string]uint16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint16{}
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		if len(fields) < 10 || fields[3] != "0A" {
			continue
		}
		_, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		out[fields[9]] = uint16(port)
	}
	return out, sc.Err()
}
