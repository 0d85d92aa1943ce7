package config

import "fmt"

// Error is one mistake in a configuration file. Load returns every Error it finds, joined with
// errors.Join; use errors.As, or walk the joined error's Unwrap() []error, to reach them.
type Error struct {
	File      string // the file the offending key was read from
	Line, Col int    // 1-based; 0 when unknown (a file that cannot be read)
	Key       string // the full dotted key, e.g. "jail.sshd.bantime" or "filter.web.failregex[1]"
	Msg       string
}

// Error returns the mistake as "file:line:col: key: msg", the shape editors and compilers use.
func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Key == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Key + ": " + e.Msg
}
