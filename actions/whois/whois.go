// Package whois is a small RFC 3912 client for the mail action's whois section: it asks whois.iana.org
// (or a fixed server) about an address, follows IANA's referral once, and returns the answer cleaned
// for a mail body. It runs no whois program.
//
// A whois answer is written by whoever controls the server, so it is attacker-controlled text: Lookup
// keeps printable UTF-8 only (control characters, ANSI and other escape sequences, NULs and invalid
// bytes removed), folds CRLF, cuts long lines and stops at a byte cap, all under one timeout. Answers
// are cached per address for a day, so an attack from one address asks the servers once.
package whois

import (
	"bufio"
	"container/list"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of a Client.
const (
	// DefaultRoot is where a lookup starts when no fixed server is set.
	DefaultRoot = "whois.iana.org:43"
	// DefaultTimeout bounds one Lookup: every connection and read, referrals included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBytes caps the raw answer read from each server.
	DefaultMaxBytes = 64 << 10
	// DefaultMaxText caps the cleaned text a Lookup returns.
	DefaultMaxText = 8 << 10
	// DefaultMaxLine is the longest cleaned line; longer ones are cut and marked with "…".
	DefaultMaxLine = 200
	// DefaultCacheTTL is how long an answer is reused for the same address.
	DefaultCacheTTL = 24 * time.Hour
	// DefaultCacheSize bounds the cache; the least recently used address goes first.
	DefaultCacheSize = 1024
)

// Client looks addresses up. The zero value is not usable; create it with New. Safe for concurrent use.
type Client struct {
	// Server is a fixed "host:port" to ask, with no referral followed; "" starts at Root and follows
	// its "refer:" line.
	Server string
	// Root is the referral root (DefaultRoot).
	Root string
	// ReferralPort is the port of a referred server (43); tests point it elsewhere.
	ReferralPort string
	Timeout      time.Duration
	MaxBytes     int
	MaxText      int
	MaxLine      int
	CacheTTL     time.Duration
	CacheSize    int
	// Now is the clock of the cache (time.Now).
	Now func() time.Time

	dialer net.Dialer
	mu     sync.Mutex
	cache  map[netip.Addr]*list.Element
	order  *list.List // of *cached, most recently used first
}

type cached struct {
	addr netip.Addr
	text string
	at   time.Time
}

// New returns a client with the defaults; server is a fixed "host:port", or "" to follow referrals
// from whois.iana.org.
func New(server string) *Client {
	return &Client{
		Server:       server,
		Root:         DefaultRoot,
		ReferralPort: "43",
		Timeout:      DefaultTimeout,
		MaxBytes:     DefaultMaxBytes,
		MaxText:      DefaultMaxText,
		MaxLine:      DefaultMaxLine,
		CacheTTL:     DefaultCacheTTL,
		CacheSize:    DefaultCacheSize,
		Now:          time.Now,
		cache:        map[netip.Addr]*list.Element{},
		order:        list.New(),
	}
}

// Lookup returns the cleaned whois text for addr, from the cache when it is fresh. A failed lookup is
// not cached: the next ban of the address tries again.
func (c *Client) Lookup(ctx context.Context, addr netip.Addr) (string, error) {
	addr = addr.Unmap()
	if text, ok := c.cached(addr); ok {
		return text, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	text, err := c.lookup(ctx, addr)
	if err != nil {
		return "", err
	}
	c.store(addr, text)
	return text, nil
}

func (c *Client) lookup(ctx context.Context, addr netip.Addr) (string, error) {
	query := addr.String()
	if c.Server != "" {
		raw, err := c.query(ctx, c.Server, query)
		if err != nil {
			return "", err
		}
		return Clean(raw, c.MaxText, c.MaxLine), nil
	}
	raw, err := c.query(ctx, c.Root, query)
	if err != nil {
		return "", err
	}
	refer := referral(raw)
	if refer == "" {
		return Clean(raw, c.MaxText, c.MaxLine), nil
	}
	server := net.JoinHostPort(refer, c.ReferralPort)
	ans, err := c.query(ctx, server, query)
	if err != nil {
		return "", fmt.Errorf("referred by %s: %w", c.Root, err)
	}
	return Clean(ans, c.MaxText, c.MaxLine), nil
}

// query sends one RFC 3912 query ("QUERY\r\n") to server and reads the answer until the server closes
// the connection, at most MaxBytes of it.
func (c *Client) query(ctx context.Context, server, query string) ([]byte, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("whois %s: %w", server, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, query+"\r\n"); err != nil {
		return nil, fmt.Errorf("whois %s: %w", server, err)
	}
	raw, err := io.ReadAll(io.LimitReader(conn, int64(c.MaxBytes)))
	if err != nil && len(raw) == 0 {
		return nil, fmt.Errorf("whois %s: %w", server, err)
	}
	return raw, nil
}

// referral returns the server an IANA answer refers to ("refer: whois.ripe.net"), if it names a
// plausible host: letters, digits, dots and dashes only.
func referral(raw []byte) string {
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 0, 4096), len(raw)+1)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "refer") {
			continue
		}
		v = strings.TrimSpace(v)
		if hostRE(v) {
			return v
		}
		return ""
	}
	return ""
}

func hostRE(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func (c *Client) cached(addr netip.Addr) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.cache[addr]
	if !ok {
		return "", false
	}
	e := el.Value.(*cached)
	if c.Now().Sub(e.at) > c.CacheTTL {
		c.order.Remove(el)
		delete(c.cache, addr)
		return "", false
	}
	c.order.MoveToFront(el)
	return e.text, true
}

func (c *Client) store(addr netip.Addr, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.cache[addr]; ok {
		c.order.Remove(el)
	}
	c.cache[addr] = c.order.PushFront(&cached{addr: addr, text: text, at: c.Now()})
	for c.order.Len() > max(c.CacheSize, 1) {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.cache, old.Value.(*cached).addr)
	}
}
