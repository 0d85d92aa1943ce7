package whois

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean turns an untrusted whois answer into text that is safe to put in a mail body or a terminal:
//   - CRLF and lone CR end lines; NULs, other C0 and C1 control characters and DEL are removed, a tab
//     becomes a space;
//   - escape sequences are removed whole: CSI (ESC [ ... final byte, also the 8-bit CSI), OSC, DCS,
//     PM, APC and SOS strings up to their terminator (BEL or ST), and two-byte escapes (ESC x);
//   - invalid UTF-8 is dropped, and so is every rune that is not printable (unicode.IsPrint: format
//     characters such as bidirectional overrides go too);
//   - trailing spaces are trimmed, runs of blank lines fold into one, lines longer than maxLine runes
//     are cut and end in "…";
//   - the result stops at maxText bytes, at a line's end, with a last line saying it was cut.
//
// Every line of the result is indented by two spaces, so none starts with "~" (a mailx command
// escape) or "." (the end of an SMTP message).
func Clean(raw []byte, maxText, maxLine int) string {
	var lines []string
	var cur strings.Builder
	runes := 0
	cut := false
	flush := func() {
		line := strings.TrimRight(cur.String(), " ")
		cur.Reset()
		runes, cut = 0, false
		if line == "" && (len(lines) == 0 || lines[len(lines)-1] == "") {
			return
		}
		lines = append(lines, line)
	}
	for i := 0; i < len(raw); {
		b := raw[i]
		switch {
		case b == '\r':
			flush()
			i++
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
			continue
		case b == '\n':
			flush()
			i++
			continue
		case b == 0x1b:
			i = skipEscape(raw, i+1)
			continue
		case b == '\t':
			b = ' '
			fallthrough
		case b >= 0x20 && b < 0x7f:
			if runes < maxLine {
				cur.WriteByte(b)
				runes++
			} else if !cut {
				cur.WriteString("…")
				cut = true
			}
			i++
			continue
		case b < 0x80:
			i++ // another C0 control, or DEL
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n <= 1 {
			i++
			continue
		}
		i += n
		if r == 0x9b { // 8-bit CSI
			i = skipCSI(raw, i)
			continue
		}
		if r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f {
			i = skipString(raw, i) // 8-bit DCS, SOS, OSC, PM, APC
			continue
		}
		if !unicode.IsPrint(r) {
			continue
		}
		if runes < maxLine {
			cur.WriteRune(r)
			runes++
		} else if !cut {
			cur.WriteString("…")
			cut = true
		}
	}
	flush()
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var out strings.Builder
	for _, l := range lines {
		if out.Len()+len(l)+3 > maxText {
			out.WriteString("  [whois answer cut]\n")
			break
		}
		if l != "" {
			out.WriteString("  ")
			out.WriteString(l)
		}
		out.WriteByte('\n')
	}
	return out.String()
}

// skipEscape skips the escape sequence whose ESC was at i-1 and returns the index after it.
func skipEscape(raw []byte, i int) int {
	if i >= len(raw) {
		return i
	}
	switch raw[i] {
	case '[':
		return skipCSI(raw, i+1)
	case ']', 'P', 'X', '^', '_':
		return skipString(raw, i+1)
	}
	if raw[i] >= 0x20 && raw[i] < 0x7f {
		// Two-byte escapes, and those with intermediate bytes (ESC ( B): skip the intermediates too.
		for i < len(raw) && raw[i] >= 0x20 && raw[i] <= 0x2f {
			i++
		}
		if i < len(raw) && raw[i] >= 0x30 && raw[i] < 0x7f {
			i++
		}
	}
	return i
}

// skipCSI skips a control sequence's parameter and intermediate bytes and its final byte.
func skipCSI(raw []byte, i int) int {
	for i < len(raw) {
		b := raw[i]
		i++
		if b >= 0x40 && b <= 0x7e {
			return i
		}
		if b < 0x20 || b >= 0x7f {
			return i // not a well-formed sequence: stop at the odd byte
		}
	}
	return i
}

// skipString skips a control string up to its terminator: BEL, ESC \, or the 8-bit ST.
func skipString(raw []byte, i int) int {
	for i < len(raw) {
		switch {
		case raw[i] == 0x07:
			return i + 1
		case raw[i] == 0x1b && i+1 < len(raw) && raw[i+1] == '\\':
			return i + 2
		case raw[i] == 0xc2 && i+1 < len(raw) && raw[i+1] == 0x9c:
			return i + 2
		case raw[i] == '\n':
			return i // an unterminated string ends with its line
		}
		i++
	}
	return i
}
