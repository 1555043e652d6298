package kconfig

import (
	"fmt"
	"strings"
)

// Dropped is a requested option the final .config does not have as asked.
type Dropped struct {
	Option     Option   // as requested
	Got        string   // value in the final .config; "n" when unset
	DependsOn  []string // "depends on ..." lines of its Kconfig entry, then enclosing "if ..."/menu conditions
	DefinedIn  string   // "file:line" of its Kconfig entry (relative to the tree), "" if none
	Prompt     bool     // whether the entry can be set by a user at all
	SelectedBy []string // the options that select it, as "OTHER" or "OTHER if EXPR"
	final      map[string]string
}

func (d Dropped) String() string {
	var b strings.Builder
	b.WriteString(d.Option.String() + " requested but the final .config ")
	if d.Got == "n" {
		b.WriteString("has it unset")
	} else {
		fmt.Fprintf(&b, "has %s=%s", d.Option.Name, d.Got)
	}
	if d.DefinedIn == "" {
		b.WriteString("; no Kconfig file in the tree defines it (misspelt, or not in this kernel version?)")
		return b.String()
	}
	if len(d.DependsOn) > 0 {
		var deps []string
		for _, dep := range d.DependsOn {
			deps = append(deps, annotate(dep, d.final))
		}
		b.WriteString("; it depends on: " + strings.Join(deps, "; "))
	}
	var sel []string
	for _, s := range d.SelectedBy {
		sel = append(sel, annotate(s, d.final))
	}
	switch {
	case !d.Prompt && len(sel) > 0:
		b.WriteString("; it has no prompt, so only a select sets it, from: " + strings.Join(sel, ", "))
	case !d.Prompt:
		b.WriteString("; it has no prompt, so only a select sets it")
	case len(sel) > 0:
		b.WriteString("; it is also selected by: " + strings.Join(sel, ", "))
	}
	fmt.Fprintf(&b, " (defined in %s)", d.DefinedIn)
	return b.String()
}

// DroppedError lists the requested options that did not survive.
type DroppedError struct{ Dropped []Dropped }

func (e *DroppedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kconfig: %d requested option(s) did not make it into the final .config:", len(e.Dropped))
	for _, d := range e.Dropped {
		b.WriteString("\n  " + d.String())
	}
	b.WriteString("\nadd the missing dependencies to the config fragment (or drop the option) and rerun")
	return b.String()
}

// Check verifies that every requested option has the requested value in the
// final .config ("n" is satisfied by an unset option). When an option is
// requested more than once, the last request counts, as when merging. The
// Kconfig files under srcDir explain the options that were dropped.
func Check(requested []Option, final []byte, srcDir string) error {
	got := Parse(final)
	last := map[string]int{}
	for i, o := range requested {
		last[o.Name] = i
	}
	var dropped []Dropped
	for i, o := range requested {
		if last[o.Name] != i {
			continue
		}
		v, ok := got[o.Name]
		if !ok {
			v = "n"
		}
		if v == o.Value {
			continue
		}
		dropped = append(dropped, Dropped{Option: o, Got: v, final: got})
	}
	if len(dropped) == 0 {
		return nil
	}
	var names []string
	for _, d := range dropped {
		names = append(names, strings.TrimPrefix(d.Option.Name, "CONFIG_"))
	}
	db := Lookup(srcDir, names)
	for i := range dropped {
		d := &dropped[i]
		sym := db.Symbols[strings.TrimPrefix(d.Option.Name, "CONFIG_")]
		if sym == nil {
			continue
		}
		var where []string
		for _, e := range sym.Entries {
			where = append(where, fmt.Sprintf("%s:%d", e.File, e.Line))
			d.DependsOn = appendNew(d.DependsOn, e.DependsOn...)
			d.DependsOn = appendNew(d.DependsOn, e.Enclosing...)
			d.Prompt = d.Prompt || e.Prompt
		}
		d.DefinedIn = strings.Join(where, ", ")
		d.SelectedBy = sym.SelectedBy
	}
	return &DroppedError{Dropped: dropped}
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			found = found || l == it
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

// annotate appends the final value to each symbol of a Kconfig expression,
// as menuconfig does: "depends on A && !B" -> "depends on A [=n] && !B [=y]".
func annotate(line string, final map[string]string) string {
	if final == nil {
		return line
	}
	var b strings.Builder
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"' || c == '\'':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				b.WriteString(line[i:])
				return b.String()
			}
			b.WriteString(line[i : i+j+2])
			i += j + 2
		case isIdent(c):
			j := i
			for j < len(line) && isIdent(line[j]) {
				j++
			}
			word := line[i:j]
			b.WriteString(word)
			if isSymbol(word) {
				v, ok := final["CONFIG_"+word]
				if !ok {
					v = "n"
				}
				fmt.Fprintf(&b, " [=%s]", v)
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// isSymbol tells Kconfig symbols (upper case by convention) from keywords
// and constants in an expression.
func isSymbol(w string) bool {
	if w == "y" || w == "m" || w == "n" || strings.ToUpper(w) != w {
		return false
	}
	return strings.ContainsFunc(w, func(r rune) bool { return r == '_' || r >= 'A' && r <= 'Z' })
}
