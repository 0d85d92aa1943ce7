// Command bareloop reads a directory of journal files with a match the way a bare Go program would
// (see package bareloop) and prints how many entries it read and the last one's timestamp. The
// catch-up benchmark times it as a whole process, next to gaolerd.
//
//	bareloop DIR TERM...    (TERM: FIELD=value, or "+" between alternatives)
package main

import (
	"fmt"
	"os"

	"github.com/gaoler/gaoler/internal/bareloop"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bareloop DIR [TERM...]")
		os.Exit(2)
	}
	n, last, err := bareloop.Read(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareloop:", err)
		os.Exit(1)
	}
	fmt.Println(n, last)
}
