package main

import (
	"flag"
	"io"
	"strings"
)

// parseArgs parses args with fs, allowing flags before, between and after the positional arguments
// (gaoler ban sshd 192.0.2.7 --for 1h); "--" ends the flags. It returns the positional arguments, or a
// usage error.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			msg := err.Error()
			if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown option -" + name // every option is documented with two dashes
			}
			return nil, usageErrorf("%s: %s", fs.Name(), msg)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// Parse stops at the first non-flag, or drops "--" and stops after it.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments of a command.
func wantArgs(args []string, min, max int, synopsis string) error {
	if len(args) < min || len(args) > max {
		return usageErrorf("usage: gaoler %s", synopsis)
	}
	return nil
}
