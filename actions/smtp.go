package actions

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"time"
)

// LocalMTA is where mail goes when the action sets no smtp server: the host's own MTA (Debian's exim4
// listens on 127.0.0.1:25 and [::1]:25). Talking SMTP to it, rather than running /usr/sbin/sendmail,
// works from the hardened unit: no set-uid program, no write access to the MTA's spool. The address is
// written out, not "localhost", so no resolver (or /etc/hosts) is needed to reach it.
const LocalMTA = "127.0.0.1:25"

// SMTP delivers mail to one server. It uses STARTTLS when the server offers it (verifying the server's
// certificate against the system's roots), except on a loopback address, where there is no network to
// protect and the local MTA's certificate is usually self-signed.
type SMTP struct {
	Addr  string // "host:port"
	Hello string // the name this host gives in EHLO
	// TLS is the STARTTLS configuration; nil means the system roots and the server's host name.
	TLS *tls.Config
}

// Send delivers msg (headers and body, CRLF line ends) from from to every address of to.
func (s *SMTP) Send(ctx context.Context, from string, to []string, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultTimeout)
	}
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	defer c.Close()
	if err := s.deliver(c, host, from, to, msg); err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	return nil
}

func (s *SMTP) deliver(c *smtp.Client, host, from string, to []string, msg []byte) error {
	if err := c.Hello(s.Hello); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !isLoopback(host) {
		cfg := s.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// isLoopback reports whether host is "localhost" or a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
