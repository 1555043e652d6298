package kconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Entry is one "config NAME" or "menuconfig NAME" block of a Kconfig file.
type Entry struct {
	File      string   // relative to the tree
	Line      int      // 1-based
	DependsOn []string // its own "depends on EXPR" lines
	Enclosing []string // conditions of enclosing blocks: "if EXPR", `menu "T": depends on EXPR`, "choice: depends on EXPR"
	Prompt    bool     // has a prompt, so a user (or fragment) can set it
}

// Symbol gathers what the Kconfig files say about one symbol.
type Symbol struct {
	Entries    []Entry
	SelectedBy []string // "select NAME" lines, as "OTHER" or "OTHER if EXPR"
}

// DB is what Lookup found, by symbol name without the CONFIG_ prefix.
type DB struct {
	Symbols map[string]*Symbol
}

// Lookup finds the Kconfig entries of names (without CONFIG_) in the tree at
// srcDir. It follows "source" statements from the top Kconfig as the kernel
// does for x86, so that enclosing if/menu conditions are known; symbols not
// found that way are looked for in every Kconfig* file under srcDir.
func Lookup(srcDir string, names []string) *DB {
	want := map[string]bool{}
	for _, n := range names {
		want[strings.TrimPrefix(n, "CONFIG_")] = true
	}
	p := &parser{root: srcDir, want: want, db: &DB{Symbols: map[string]*Symbol{}}, seen: map[string]bool{}}
	top := filepath.Join(srcDir, "Kconfig")
	if _, err := os.Stat(top); err == nil {
		p.file(top, nil)
	}
	// Look further only for what the x86 sources did not define, so that
	// other architectures' entries do not muddle the ones found.
	missing := map[string]bool{}
	for n := range want {
		if s := p.db.Symbols[n]; s == nil || len(s.Entries) == 0 {
			missing[n] = true
		}
	}
	if len(missing) > 0 {
		p.want = missing
		filepath.WalkDir(srcDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if n := d.Name(); path != srcDir && (strings.HasPrefix(n, ".") || n == "Documentation") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(d.Name(), "Kconfig") && !p.seen[path] {
				p.file(path, nil)
			}
			return nil
		})
	}
	return p.db
}

type parser struct {
	root string
	want map[string]bool
	db   *DB
	seen map[string]bool
}

func (p *parser) sym(name string) *Symbol {
	s := p.db.Symbols[name]
	if s == nil {
		s = &Symbol{}
		p.db.Symbols[name] = s
	}
	return s
}

// block is an open if/menu/choice with the conditions it puts on its content.
type block struct {
	kind  string
	conds []string
}

// logicalLines reads a Kconfig file joining backslash continuations; each
// line comes with its 1-based starting line number.
func logicalLines(b []byte) (lines []string, nums []int) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var cur strings.Builder
	start := 0
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		nums = append(nums, start)
		cur.Reset()
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
		nums = append(nums, start)
	}
	return lines, nums
}

func indentOf(l string) int {
	n := 0
	for _, c := range l {
		switch c {
		case ' ':
			n++
		case '\t':
			n = (n/8 + 1) * 8
		default:
			return n
		}
	}
	return n
}

// file parses one Kconfig file; inherited are the conditions of the blocks
// around the "source" statement that brought it in.
func (p *parser) file(path string, inherited []string) {
	if p.seen[path] {
		return
	}
	p.seen[path] = true
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	rel, err := filepath.Rel(p.root, path)
	if err != nil {
		rel = path
	}
	lines, nums := logicalLines(b)

	var stack []block
	conds := func() []string {
		c := append([]string(nil), inherited...)
		for _, bl := range stack {
			c = append(c, bl.conds...)
		}
		return c
	}
	var entry *Entry     // the config entry being read, nil if none
	var entryName string // its symbol
	var owner *block     // the menu/choice whose header is being read
	helpIndent := -2     // -2: not in help; -1: in help, before its first line

	for i, raw := range lines {
		if helpIndent != -2 {
			if strings.TrimSpace(raw) == "" {
				continue
			}
			ind := indentOf(raw)
			if helpIndent == -1 {
				helpIndent = ind
				continue
			}
			if ind >= helpIndent {
				continue
			}
			helpIndent = -2
		}
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		if k, r, ok := strings.Cut(line, "\t"); ok && len(k) < len(kw) {
			kw, rest = k, r
		}
		rest = strings.TrimSpace(rest)
		switch kw {
		case "config", "menuconfig":
			entryName, owner = rest, nil
			entry = nil
			if p.want[rest] {
				entry = &Entry{File: rel, Line: nums[i], Enclosing: conds()}
			}
		case "choice":
			stack = append(stack, block{kind: "choice"})
			owner, entry, entryName = &stack[len(stack)-1], nil, ""
		case "menu":
			stack = append(stack, block{kind: "menu " + rest})
			owner, entry, entryName = &stack[len(stack)-1], nil, ""
		case "if":
			stack = append(stack, block{kind: "if", conds: []string{"if " + strings.Join(strings.Fields(rest), " ")}})
			owner, entry, entryName = nil, nil, ""
		case "endchoice", "endmenu", "endif":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			owner, entry, entryName = nil, nil, ""
		case "comment", "mainmenu":
			owner, entry, entryName = nil, nil, ""
		case "source", "rsource", "osource", "orsource":
			owner, entry, entryName = nil, nil, ""
			p.source(kw, rest, path, conds())
		case "depends":
			expr := strings.Join(strings.Fields(strings.TrimPrefix(rest, "on")), " ")
			if entry != nil {
				entry.DependsOn = append(entry.DependsOn, "depends on "+expr)
			} else if owner != nil {
				owner.conds = append(owner.conds, owner.kind+": depends on "+expr)
			}
		case "select", "imply":
			if entryName == "" || kw == "imply" {
				break
			}
			target, cond, _ := strings.Cut(rest, " if ")
			target = strings.TrimSpace(target)
			if p.want[target] {
				by := entryName
				if cond != "" {
					by += " if " + strings.TrimSpace(cond)
				}
				s := p.sym(target)
				s.SelectedBy = appendNew(s.SelectedBy, by)
			}
		case "bool", "tristate", "string", "int", "hex", "prompt":
			if entry != nil && (kw == "prompt" || strings.HasPrefix(rest, "\"") || strings.HasPrefix(rest, "'")) {
				entry.Prompt = true
				if cond := promptCondition(rest); cond != "" {
					entry.DependsOn = append(entry.DependsOn, "prompt only if "+cond)
				}
			}
		case "help", "---help---":
			helpIndent = -1
		}
		// An entry is complete when the next statement starts; record it as
		// soon as it is known so that help text cannot hide it.
		if (kw == "config" || kw == "menuconfig") && entry != nil {
			s := p.sym(entryName)
			s.Entries = append(s.Entries, *entry)
			entry = &s.Entries[len(s.Entries)-1]
		}
	}
}

// source follows a source statement, expanding $(SRCARCH) for x86; other
// macros, and files that do not exist, are skipped.
func (p *parser) source(kw, arg, from string, conds []string) {
	arg = strings.Trim(arg, "\"'")
	arg = strings.ReplaceAll(arg, "$(SRCARCH)", "x86")
	arg = strings.ReplaceAll(arg, "$SRCARCH", "x86")
	if strings.Contains(arg, "$") {
		return
	}
	base := p.root
	if kw == "rsource" || kw == "orsource" {
		base = filepath.Dir(from)
	}
	matches, _ := filepath.Glob(filepath.Join(base, arg))
	for _, m := range matches {
		p.file(m, conds)
	}
}

// String renders an entry for messages.
func (e Entry) String() string { return fmt.Sprintf("%s:%d", e.File, e.Line) }

// promptCondition returns EXPR of a prompt written `"text" if EXPR`.
func promptCondition(rest string) string {
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	end := strings.IndexByte(rest[1:], rest[0])
	if end < 0 {
		return ""
	}
	after := strings.TrimSpace(rest[end+2:])
	if cond, ok := strings.CutPrefix(after, "if "); ok {
		return strings.TrimSpace(cond)
	}
	return ""
}
