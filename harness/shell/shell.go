// Package shell quotes command lines for a POSIX shell: the QEMU command
// a run records and the commands that rerun a scenario.
package shell

import "strings"

// Quote joins args with spaces, each quoted so that sh reads it back as
// one word with the same bytes and expands nothing in it: an argument
// that is empty or holds anything but letters, digits and -_./=:,+@%^
// goes in single quotes, a single quote in it closed, escaped and
// reopened.
func Quote(args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsFunc(a, unsafe) {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// unsafe tells a character that sh would treat specially somewhere in a
// word: blanks, quotes, $, `, \, globs (* ? [), ~, #, &, ;, |, <, >,
// parentheses, braces, !.
func unsafe(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("-_./=:,+@%^", r)
}
