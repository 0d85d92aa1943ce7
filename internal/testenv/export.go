package testenv

import (
	"strconv"
	"strings"
)

// ExportEntry returns one entry in the journal export format (see ExportToJournalDir) with the given
// realtime timestamp and FIELD=value fields; trusted fields (_UID, _COMM, ...) are written as given,
// which is how tests make entries of any sender.
func ExportEntry(usec uint64, fields ...string) string {
	var b strings.Builder
	b.WriteString("__REALTIME_TIMESTAMP=" + strconv.FormatUint(usec, 10) + "\n__MONOTONIC_TIMESTAMP=" + strconv.FormatUint(usec/1000, 10) + "\n")
	b.WriteString("_BOOT_ID=6a3c0a2b1e0d4f5c8b7a69584736251f\n")
	for _, f := range fields {
		b.WriteString(f + "\n")
	}
	return b.String() + "\n"
}
