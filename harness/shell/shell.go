// Package shell quotes command lines for a POSIX shell: the QEMU command
// a run records and the commands that rerun a scenario.
package shell

import "strings"

// Quote joins args with spaces, each quoted so that sh reads it back as
// one word with the same bytes: an argument that is empty or holds a
// blank, a quote, a dollar, a backquote or a backslash goes in single
// quotes (a single quote in it as '\”).
func Quote(args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}
