package actions

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// message is a mail as gaolerd writes it: every header value is cleaned here (no CR, LF or other
// control character can start a header of its own), and the body's lines are kept under SMTP's
// 998-byte limit.
type message struct {
	headers [][2]string
	body    strings.Builder
}

// maxBodyLine is where a long body line is wrapped; SMTP allows 998 bytes before CRLF.
const maxBodyLine = 900

func (m *message) header(name, value string) {
	m.headers = append(m.headers, [2]string{name, headerValue(value)})
}

// headerValue strips CR, LF and every other control character from a header value, and encodes one
// that is not ASCII as RFC 2047 words.
func headerValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			return -1
		}
		return r
	}, v)
	v = strings.TrimSpace(v)
	for _, r := range v {
		if r >= 0x80 {
			return mime.QEncoding.Encode("utf-8", v)
		}
	}
	if len(v) > maxBodyLine {
		v = v[:maxBodyLine]
	}
	return v
}

// line adds one body line, cleaned: control characters and invalid UTF-8 removed, wrapped at
// maxBodyLine bytes with the continuation indented.
func (m *message) line(s string) {
	s = bodyText(s)
	for len(s) > maxBodyLine {
		cut := maxBodyLine
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		m.body.WriteString(s[:cut])
		m.body.WriteString("\n")
		s = "    " + s[cut:]
	}
	m.body.WriteString(s)
	m.body.WriteString("\n")
}

// text adds lines already cleaned (the whois section), one per "\n".
func (m *message) text(s string) {
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		m.line(l)
	}
}

// bodyText keeps printable text and spaces of one line.
func bodyText(s string) string {
	s = strings.ToValidUTF8(s, "")
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if r != ' ' && !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
}

// bytes returns the mail with CRLF line ends: 7bit when the body is ASCII, else quoted-printable.
func (m *message) bytes() []byte {
	var b bytes.Buffer
	body := m.body.String()
	ascii := true
	for i := 0; i < len(body); i++ {
		if body[i] >= 0x80 {
			ascii = false
			break
		}
	}
	hs := append(m.headers, [2]string{"MIME-Version", "1.0"}, [2]string{"Content-Type", "text/plain; charset=utf-8"})
	if ascii {
		hs = append(hs, [2]string{"Content-Transfer-Encoding", "7bit"})
	} else {
		hs = append(hs, [2]string{"Content-Transfer-Encoding", "quoted-printable"})
	}
	for _, h := range hs {
		b.WriteString(h[0])
		b.WriteString(": ")
		b.WriteString(h[1])
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	if !ascii {
		var q bytes.Buffer
		w := quotedprintable.NewWriter(&q)
		w.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
		w.Close()
		body = strings.ReplaceAll(q.String(), "\r\n", "\n")
	}
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return b.Bytes()
}

// messageID returns a fresh Message-ID value on host.
func messageID(now time.Time, host string) string {
	var r [8]byte
	rand.Read(r[:])
	return "<" + now.UTC().Format("20060102150405") + "." + hex.EncodeToString(r[:]) + "@" + host + ">"
}
