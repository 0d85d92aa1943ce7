package journal

// Entry is one journal entry as the Reader delivers it: its timestamp, its message, the values of the
// fields the Reader was asked for and, for the last entry of a batch, its cursor. Entries in a batch are
// reused by the next batch, but their strings are not: a string taken from an Entry may be kept.
type Entry struct {
	// Cursor is the entry's sd_journal_get_cursor(3), to resume after it with PositionOf. The Reader
	// sets it on the last entry of each batch only, and leaves it "" on the others: formatting a cursor
	// costs about as much as reading the entry's fields, and a batch is handled (and checkpointed) as
	// a whole.
	Cursor   string
	Realtime uint64 // __REALTIME_TIMESTAMP in microseconds since the epoch
	Message  string // MESSAGE

	names  []string // requested field names, shared by all entries of a Reader; names[0] is MESSAGE
	values []string // values[i] is the value of names[i], "" if absent
}

// NewEntry returns an Entry with the given fields, for tests of code that consumes entries.
func NewEntry(cursor string, realtimeUsec uint64, message string, fields map[string]string) *Entry {
	e := &Entry{Cursor: cursor, Realtime: realtimeUsec, Message: message,
		names: []string{"MESSAGE"}, values: []string{message}}
	for k, v := range fields {
		if k == "MESSAGE" {
			continue
		}
		e.names = append(e.names, k)
		e.values = append(e.values, v)
	}
	return e
}

// Field returns the value of the field name, or "" when the entry has no such field or the Reader was
// not asked to read it. Only the first value of a field that occurs more than once is read.
func (e *Entry) Field(name string) string {
	if name == "MESSAGE" {
		return e.Message
	}
	for i, n := range e.names {
		if n == name {
			return e.values[i]
		}
	}
	return ""
}

// has reports whether the entry's field name has one of values; an absent field has the value "".
func (e *Entry) has(name string, values []string) bool {
	v := ""
	for i, n := range e.names {
		if n == name {
			v = e.values[i]
			if i == 0 {
				v = e.Message
			}
			break
		}
	}
	for _, want := range values {
		if v == want {
			return true
		}
	}
	return false
}
