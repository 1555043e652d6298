package luo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// This file is a parser for the small subset of C that uAPI headers such
// as include/uapi/linux/liveupdate.h use: object-like #defines, enums,
// structs of fixed-size integer fields and arrays of them, and the _IO*
// ioctl macros. It computes struct layouts with the C rules of the LP64
// ABIs Linux runs on (x86_64, arm64): a field is placed at the next
// multiple of its alignment, a struct is as aligned as its most aligned
// field and padded to a multiple of that.

// cField is one member of a C struct.
type cField struct {
	Name  string
	Type  string // "__u32", "__aligned_u64", ...
	Elems int    // array length; 0 for a scalar
	Off   int64
	Size  int64 // of the whole member (all elements)
}

// cStruct is a laid-out C struct.
type cStruct struct {
	Name   string
	Fields []cField
	Size   int64
	Align  int64
}

// cHeader is what parseHeader found in a header.
type cHeader struct {
	// Defines are the object-like macros, by name, with their bodies
	// (continuation lines joined).
	Defines map[string]string
	// Enums are the enumerators of every enum.
	Enums map[string]int64
	// Structs are the structs by tag.
	Structs map[string]*cStruct
	// Ioctls are the macros defined as _IO, _IOR, _IOW or _IOWR, with
	// their request numbers.
	Ioctls map[string]uint64
}

// cScalar is the size and alignment of a uAPI integer type.
type cScalar struct {
	size, align int64
	signed      bool
}

var cScalars = map[string]cScalar{
	"__u8": {1, 1, false}, "__s8": {1, 1, true},
	"__u16": {2, 2, false}, "__s16": {2, 2, true},
	"__u32": {4, 4, false}, "__s32": {4, 4, true},
	"__u64": {8, 8, false}, "__s64": {8, 8, true},
	"__aligned_u64": {8, 8, false},
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	defineRe     = regexp.MustCompile(`^#\s*define\s+([A-Za-z_]\w*)(\(?)\s*(.*)$`)
	enumRe       = regexp.MustCompile(`(?s)\benum\s*(\w*)\s*\{(.*?)\}\s*;`)
	structRe     = regexp.MustCompile(`(?s)\bstruct\s+(\w+)\s*\{(.*?)\}\s*;`)
	memberRe     = regexp.MustCompile(`^(\w+)\s+(\w+)\s*(?:\[\s*([^\]]+?)\s*\])?$`)
	ioctlRe      = regexp.MustCompile(`^_IO(|R|W|WR)\s*\((.*)\)$`)
)

// parseHeader parses src. Anything it does not understand inside an enum
// or a struct is an error, so that a header growing a construct the
// parser cannot lay out fails the check instead of passing it.
func parseHeader(src string) (*cHeader, error) {
	src = blockComment.ReplaceAllString(src, " ")
	src = lineComment.ReplaceAllString(src, "")
	src = strings.ReplaceAll(src, "\\\n", " ")
	h := &cHeader{Defines: map[string]string{}, Enums: map[string]int64{}, Structs: map[string]*cStruct{}, Ioctls: map[string]uint64{}}
	var code strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "#") {
			code.WriteString(line + "\n")
			continue
		}
		m := defineRe.FindStringSubmatch(t)
		if m == nil || m[2] == "(" {
			continue // #include, #ifndef, function-like macros
		}
		h.Defines[m[1]] = strings.TrimSpace(m[3])
	}
	body := code.String()
	for _, m := range enumRe.FindAllStringSubmatch(body, -1) {
		if err := h.enum(m[2]); err != nil {
			return nil, fmt.Errorf("enum %s: %w", m[1], err)
		}
	}
	for _, m := range structRe.FindAllStringSubmatch(body, -1) {
		s, err := h.layout(m[1], m[2])
		if err != nil {
			return nil, fmt.Errorf("struct %s: %w", m[1], err)
		}
		h.Structs[m[1]] = s
	}
	for name, def := range h.Defines {
		m := ioctlRe.FindStringSubmatch(def)
		if m == nil {
			continue
		}
		req, err := h.ioctl(m[1], m[2])
		if err != nil {
			return nil, fmt.Errorf("#define %s %s: %w", name, def, err)
		}
		h.Ioctls[name] = req
	}
	return h, nil
}

func (h *cHeader) enum(list string) error {
	next := int64(0)
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, expr, hasValue := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if hasValue {
			v, err := h.eval(expr)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			next = v
		}
		h.Enums[name] = next
		next++
	}
	return nil
}

// eval evaluates an integer constant expression of the kinds uAPI
// headers use for enum values and array lengths: a literal, a macro or
// enumerator, either in parentheses.
func (h *cHeader) eval(expr string) (int64, error) {
	return h.evalDepth(expr, 0)
}

func (h *cHeader) evalDepth(expr string, depth int) (int64, error) {
	e := strings.TrimSpace(expr)
	for strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	if depth > 16 {
		return 0, fmt.Errorf("%q: macros nest too deep", expr)
	}
	if v, err := strconv.ParseInt(strings.TrimRight(e, "uUlL"), 0, 64); err == nil {
		return v, nil
	}
	if v, ok := h.Enums[e]; ok {
		return v, nil
	}
	if d, ok := h.Defines[e]; ok {
		return h.evalDepth(d, depth+1)
	}
	return 0, fmt.Errorf("cannot evaluate %q", e)
}

func (h *cHeader) layout(name, members string) (*cStruct, error) {
	s := &cStruct{Name: name, Align: 1}
	for _, decl := range strings.Split(members, ";") {
		decl = strings.Join(strings.Fields(decl), " ")
		if decl == "" {
			continue
		}
		m := memberRe.FindStringSubmatch(decl)
		if m == nil {
			return nil, fmt.Errorf("member %q is not \"type name\" or \"type name[N]\"", decl)
		}
		sc, ok := cScalars[m[1]]
		if !ok {
			return nil, fmt.Errorf("member %q: type %s is not a fixed-size uAPI integer", decl, m[1])
		}
		f := cField{Name: m[2], Type: m[1], Size: sc.size}
		if m[3] != "" {
			n, err := h.eval(m[3])
			if err != nil {
				return nil, fmt.Errorf("member %q: %w", decl, err)
			}
			if n <= 0 {
				return nil, fmt.Errorf("member %q: array length %d", decl, n)
			}
			f.Elems = int(n)
			f.Size = sc.size * n
		}
		f.Off = alignUp(s.Size, sc.align)
		s.Size = f.Off + f.Size
		s.Align = max(s.Align, sc.align)
		s.Fields = append(s.Fields, f)
	}
	if len(s.Fields) == 0 {
		return nil, fmt.Errorf("no members")
	}
	s.Size = alignUp(s.Size, s.Align)
	return s, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// The generic _IOC encoding of include/uapi/asm-generic/ioctl.h, which
// x86 and arm64 use: nr in bits 0-7, type in 8-15, size in 16-29,
// direction in 30-31 (none 0, write 1, read 2).
const (
	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30
	iocSizeMask  = 1<<14 - 1
)

// ioctl computes the request number of _IO<dir>(args).
func (h *cHeader) ioctl(dir, args string) (uint64, error) {
	parts := strings.Split(args, ",")
	want := 3
	if dir == "" {
		want = 2
	}
	if len(parts) != want {
		return 0, fmt.Errorf("_IO%s takes %d arguments, got %d", dir, want, len(parts))
	}
	typ, err := h.eval(parts[0])
	if err != nil {
		return 0, fmt.Errorf("type: %w", err)
	}
	nr, err := h.eval(parts[1])
	if err != nil {
		return 0, fmt.Errorf("nr: %w", err)
	}
	var d, size uint64
	if dir != "" {
		d = map[string]uint64{"W": 1, "R": 2, "WR": 3}[dir]
		arg := strings.Join(strings.Fields(parts[2]), " ")
		tag, ok := strings.CutPrefix(arg, "struct ")
		if !ok || h.Structs[tag] == nil {
			return 0, fmt.Errorf("argument type %q is not a struct of this header", arg)
		}
		size = uint64(h.Structs[tag].Size)
		if size > iocSizeMask {
			return 0, fmt.Errorf("struct %s is %d bytes, more than _IOC's size field holds", tag, size)
		}
	}
	if typ < 0 || typ > 0xff || nr < 0 || nr > 0xff {
		return 0, fmt.Errorf("type %#x or nr %#x does not fit in 8 bits", typ, nr)
	}
	return d<<iocDirShift | size<<iocSizeShift | uint64(typ)<<iocTypeShift | uint64(nr)<<iocNRShift, nil
}
