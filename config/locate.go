package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// position is a 1-based line and byte column in a file.
type position struct{ Line, Col int }

// locateKeys returns where each key of a TOML document is written: the full dotted key (as
// toml.Key.String spells it) maps to the position of its last component, and the elements of an
// array value to the position of the element, under "key[i]". A table named in several headers, or
// created implicitly by a dotted key, keeps its first position.
//
// The TOML decoder keeps key positions to itself, so this scanner walks the text once more. It runs
// only on documents the decoder accepted, and it is forgiving: on text it does not understand it
// moves on rather than fail, and it always makes progress.
func locateKeys(text string) map[string]position {
	text = strings.TrimPrefix(text, "\xef\xbb\xbf")
	l := &locator{s: text, line: 1, out: make(map[string]position)}
	var table []string
	for l.i < len(l.s) {
		start := l.i
		l.skipBlank(true)
		if l.i >= len(l.s) {
			break
		}
		if l.s[l.i] == '[' {
			l.adv()
			if l.i < len(l.s) && l.s[l.i] == '[' {
				l.adv()
			}
			table = l.key(nil, true)
		} else {
			l.keyValue(table, true)
		}
		l.skipLine()
		if l.i == start {
			l.adv()
		}
	}
	return l.out
}

type locator struct {
	s         string
	i         int
	line      int
	lineStart int
	out       map[string]position
}

// adv moves one byte forward, counting lines.
func (l *locator) adv() {
	if l.i >= len(l.s) {
		return
	}
	if l.s[l.i] == '\n' {
		l.line++
		l.lineStart = l.i + 1
	}
	l.i++
}

func (l *locator) here() position { return position{l.line, l.i - l.lineStart + 1} }

func (l *locator) record(key string, p position) {
	if _, ok := l.out[key]; !ok {
		l.out[key] = p
	}
}

// skipBlank skips spaces, tabs and comments, and newlines too when newlines is set.
func (l *locator) skipBlank(newlines bool) {
	for l.i < len(l.s) {
		switch c := l.s[l.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			l.adv()
		case c == '\n' && newlines:
			l.adv()
		case c == '#':
			for l.i < len(l.s) && l.s[l.i] != '\n' {
				l.adv()
			}
		default:
			return
		}
	}
}

// skipLine moves past the rest of the current line.
func (l *locator) skipLine() {
	for l.i < len(l.s) && l.s[l.i] != '\n' {
		l.adv()
	}
}

// key reads a dotted key below base and, if rec is set, records each of its components.
func (l *locator) key(base []string, rec bool) []string {
	path := append([]string(nil), base...)
	for l.i < len(l.s) {
		l.skipBlank(false)
		p := l.here()
		part, ok := l.keyPart()
		if !ok {
			break
		}
		path = append(path, part)
		if rec {
			l.record(toml.Key(path).String(), p)
		}
		l.skipBlank(false)
		if l.i < len(l.s) && l.s[l.i] == '.' {
			l.adv()
			continue
		}
		break
	}
	return path
}

// keyPart reads one bare or quoted key component.
func (l *locator) keyPart() (string, bool) {
	if l.i >= len(l.s) {
		return "", false
	}
	switch l.s[l.i] {
	case '"':
		raw := l.str()
		s, err := strconv.Unquote(raw)
		if err != nil {
			s = strings.Trim(raw, `"`)
		}
		return s, true
	case '\'':
		return strings.Trim(l.str(), "'"), true
	}
	start := l.i
	for l.i < len(l.s) {
		c := l.s[l.i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			break
		}
		l.adv()
	}
	return l.s[start:l.i], l.i > start
}

// keyValue reads "key = value" below table.
func (l *locator) keyValue(table []string, rec bool) {
	path := l.key(table, rec)
	l.skipBlank(false)
	if l.i < len(l.s) && l.s[l.i] == '=' {
		l.adv()
		l.skipBlank(false)
		l.value(path, rec)
	}
}

// value skips one value, recording the keys of inline tables and the positions of array elements.
func (l *locator) value(path []string, rec bool) {
	if l.i >= len(l.s) {
		return
	}
	switch l.s[l.i] {
	case '"', '\'':
		l.str()
	case '[':
		l.adv()
		for n := 0; l.i < len(l.s); n++ {
			l.skipBlank(true)
			if l.i >= len(l.s) || l.s[l.i] == ']' {
				l.adv()
				return
			}
			if rec {
				l.record(toml.Key(path).String()+"["+strconv.Itoa(n)+"]", l.here())
			}
			start := l.i
			l.value(path, false)
			l.skipBlank(true)
			if l.i < len(l.s) && l.s[l.i] == ',' {
				l.adv()
			} else if l.i == start {
				l.adv()
			}
		}
	case '{':
		l.adv()
		for l.i < len(l.s) {
			l.skipBlank(true)
			if l.i >= len(l.s) || l.s[l.i] == '}' {
				l.adv()
				return
			}
			start := l.i
			l.keyValue(path, rec)
			l.skipBlank(true)
			if l.i < len(l.s) && l.s[l.i] == ',' {
				l.adv()
			} else if l.i == start {
				l.adv()
			}
		}
	default:
		for l.i < len(l.s) && !strings.ContainsRune(",]}#\n", rune(l.s[l.i])) {
			l.adv()
		}
	}
}

// str skips a basic, literal or multi-line string and returns its raw text, quotes included.
func (l *locator) str() string {
	start := l.i
	q := l.s[l.i]
	if strings.HasPrefix(l.s[l.i:], strings.Repeat(string(q), 3)) {
		for range 3 {
			l.adv()
		}
		for l.i < len(l.s) {
			if q == '"' && l.s[l.i] == '\\' {
				l.adv()
				l.adv()
				continue
			}
			if strings.HasPrefix(l.s[l.i:], strings.Repeat(string(q), 3)) {
				// Up to two more quotes may end the content: """a""""" is `a""`.
				for l.i < len(l.s) && l.s[l.i] == q {
					l.adv()
				}
				break
			}
			l.adv()
		}
		return l.s[start:l.i]
	}
	l.adv()
	for l.i < len(l.s) && l.s[l.i] != '\n' {
		c := l.s[l.i]
		if q == '"' && c == '\\' {
			l.adv()
			l.adv()
			continue
		}
		l.adv()
		if c == q {
			break
		}
	}
	return l.s[start:l.i]
}
