package luo

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// sampleHeader exercises the C layout rules the parser implements:
// padding before a more aligned field, tail padding, arrays sized by a
// macro, enumerators that count on or refer to others, and ioctl macros
// split over lines.
const sampleHeader = `
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _SAMPLE_H
#define _SAMPLE_H
#include <linux/types.h>
#define T 0xBA
#define N (3)
#define FN(x) ((x) + 1)
enum {
	A = 0x10,	/* 0x10 */
	B,		// 0x11
	C = A,
	D = 0x40,
};
struct pad { __u8 x; __u32 y; __u8 z; };
struct aligned { __u32 size; __aligned_u64 token; };
struct bytes { __u8 name[N]; };
struct tail { __u32 s; __u64 t; __u8 e; };
struct mixed {
	__s16	a;
	__s32	b;
	__u16	c[N];
};
#define X \
	_IO(T, B)
#define Y _IOWR(T, D, struct aligned)
#define Z _IOR(T, C, struct bytes)
#endif
`

func TestParseHeaderLayouts(t *testing.T) {
	h, err := parseHeader(sampleHeader)
	if err != nil {
		t.Fatal(err)
	}
	type f struct {
		name      string
		off, size int64
	}
	tests := []struct {
		name   string
		size   int64
		fields []f
	}{
		{"pad", 12, []f{{"x", 0, 1}, {"y", 4, 4}, {"z", 8, 1}}},
		{"aligned", 16, []f{{"size", 0, 4}, {"token", 8, 8}}},
		{"bytes", 3, []f{{"name", 0, 3}}},
		{"tail", 24, []f{{"s", 0, 4}, {"t", 8, 8}, {"e", 16, 1}}},
		{"mixed", 16, []f{{"a", 0, 2}, {"b", 4, 4}, {"c", 8, 6}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Structs[tc.name]
			if s == nil {
				t.Fatalf("struct %s not found; have %v", tc.name, h.Structs)
			}
			if s.Size != tc.size {
				t.Errorf("size %d, want %d", s.Size, tc.size)
			}
			var got []f
			for _, fl := range s.Fields {
				got = append(got, f{fl.Name, fl.Off, fl.Size})
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

func TestParseHeaderConstants(t *testing.T) {
	h, err := parseHeader(sampleHeader)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"A": 0x10, "B": 0x11, "C": 0x10, "D": 0x40} {
		if got := h.Enums[name]; got != want {
			t.Errorf("enum %s = %#x, want %#x", name, got, want)
		}
	}
	for name, want := range map[string]uint64{
		"X": 0xBA11,
		"Y": 3<<30 | 16<<16 | 0xBA<<8 | 0x40,
		"Z": 2<<30 | 3<<16 | 0xBA<<8 | 0x10,
	} {
		if got, ok := h.Ioctls[name]; !ok || got != want {
			t.Errorf("ioctl %s = %#x (found %v), want %#x", name, got, ok, want)
		}
	}
	if _, ok := h.Defines["FN"]; ok {
		t.Error("a function-like macro was taken for a constant")
	}
	if len(h.Ioctls) != 3 {
		t.Errorf("ioctls %v, want X, Y, Z only", h.Ioctls)
	}
}

// What the parser cannot lay out must fail, not be skipped.
func TestParseHeaderRejects(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown type", "struct s { int x; };", "not a fixed-size uAPI integer"},
		{"pointer", "struct s { __u8 *p; };", "is not \"type name\""},
		{"undefined length", "struct s { __u8 n[LEN]; };", `cannot evaluate "LEN"`},
		{"unknown enum value", "enum { A = B };", `cannot evaluate "B"`},
		{"ioctl on an unknown struct", "#define T 1\n#define X _IOW(T, 2, struct nope)", "not a struct of this header"},
		{"ioctl missing an argument", "#define X _IO(1)", "takes 2 arguments"},
		{"self-referencing macro", "#define L L\nstruct s { __u8 n[L]; };", "nest too deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHeader(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseHeader = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The comparison must catch what a kernel change would do to the binding.
func TestCompareBindingCatchesDrift(t *testing.T) {
	base := strings.Join([]string{
		"#define LIVEUPDATE_IOCTL_TYPE 0xBA",
		"#define LIVEUPDATE_SESSION_NAME_LENGTH 64",
		"enum { CS = 0, RS = 1 };",
		"enum { PF = 0x40, RF = 0x41, FI = 0x42, GN = 0x43 };",
		"struct liveupdate_ioctl_create_session { __u32 size; __s32 fd; __u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };",
		"struct liveupdate_ioctl_retrieve_session { __u32 size; __s32 fd; __u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };",
		"struct liveupdate_session_preserve_fd { __u32 size; __s32 fd; __aligned_u64 token; };",
		"struct liveupdate_session_retrieve_fd { __u32 size; __s32 fd; __aligned_u64 token; };",
		"struct liveupdate_session_finish { __u32 size; __u32 reserved; };",
		"struct liveupdate_session_get_name { __u32 size; __u32 reserved; __u8 name[LIVEUPDATE_SESSION_NAME_LENGTH]; };",
		"#define LIVEUPDATE_IOCTL_CREATE_SESSION _IO(LIVEUPDATE_IOCTL_TYPE, CS)",
		"#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION _IO(LIVEUPDATE_IOCTL_TYPE, RS)",
		"#define LIVEUPDATE_SESSION_PRESERVE_FD _IO(LIVEUPDATE_IOCTL_TYPE, PF)",
		"#define LIVEUPDATE_SESSION_RETRIEVE_FD _IO(LIVEUPDATE_IOCTL_TYPE, RF)",
		"#define LIVEUPDATE_SESSION_FINISH _IO(LIVEUPDATE_IOCTL_TYPE, FI)",
		"#define LIVEUPDATE_SESSION_GET_NAME _IO(LIVEUPDATE_IOCTL_TYPE, GN)",
	}, "\n")
	tests := []struct {
		name     string
		old, new string // replaced in base
		want     string // a problem must contain it; "" for none
	}{
		{"the binding's own header", "", "", ""},
		{"ioctl renumbered", "RF = 0x41", "RF = 0x44", "LIVEUPDATE_SESSION_RETRIEVE_FD is 0xba44 in the header, 0xba41 in the binding"},
		{"ioctl gained a size", "_IO(LIVEUPDATE_IOCTL_TYPE, FI)", "_IOW(LIVEUPDATE_IOCTL_TYPE, FI, struct liveupdate_session_finish)", "LIVEUPDATE_SESSION_FINISH is 0x4008ba42"},
		{"field removed", "__s32 fd; __aligned_u64 token; };\nstruct liveupdate_session_retrieve_fd", "__aligned_u64 token; };\nstruct liveupdate_session_retrieve_fd",
			"struct liveupdate_session_preserve_fd (fdArg): 2 fields in the header, 3 in the binding"},
		{"field grew", "__u32 size; __u32 reserved; };", "__u32 size; __u64 reserved; };", "reserved is 8 bytes in the header, 4 in the binding"},
		{"signedness", "struct liveupdate_session_preserve_fd { __u32 size; __s32 fd;", "struct liveupdate_session_preserve_fd { __u32 size; __u32 fd;", "fd is __u32 in the header, so uint32, but int32 in the binding"},
		{"name length", "NAME_LENGTH 64", "NAME_LENGTH 128", "LIVEUPDATE_SESSION_NAME_LENGTH is 0x80 in the header, 0x40 in the binding"},
		{"new ioctl", "", "#define LIVEUPDATE_SESSION_FREEZE _IO(LIVEUPDATE_IOCTL_TYPE, 0x44)", "LIVEUPDATE_SESSION_FREEZE: in the header, not in the binding"},
		{"new struct", "", "struct liveupdate_session_freeze { __u32 size; __u32 flags; };", "struct liveupdate_session_freeze: in the header, not in the binding"},
		{"ioctl removed", "#define LIVEUPDATE_SESSION_GET_NAME _IO(LIVEUPDATE_IOCTL_TYPE, GN)", "", "LIVEUPDATE_SESSION_GET_NAME: not in the header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := base
			switch {
			case tc.old != "":
				if !strings.Contains(src, tc.old) {
					t.Fatalf("base lacks %q", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			case tc.new != "":
				src += "\n" + tc.new
			}
			h, err := parseHeader(src)
			if err != nil {
				t.Fatal(err)
			}
			problems := compareBinding(h)
			if tc.want == "" {
				if len(problems) > 0 {
					t.Errorf("problems with a matching header: %q", problems)
				}
				return
			}
			found := false
			for _, p := range problems {
				found = found || strings.Contains(p, tc.want)
			}
			if !found {
				t.Errorf("problems %q lack %q", problems, tc.want)
			}
		})
	}
}

// RawIoctl's buffer must be 8-byte aligned (the kernel reads the token as
// a u64) and hold the fields where the structs put them.
func TestEncodeRaw(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name  string
		raw   Raw
		check func(t *testing.T, b []byte)
		fd    int // what fd() reads back from a zeroed reply
	}{
		{"create_session default size", Raw{Cmd: "create_session", Name: "abc"}, func(t *testing.T, b []byte) {
			if le.Uint32(b) != SizeSession || int32(le.Uint32(b[4:])) != -1 || string(b[8:11]) != "abc" || b[11] != 0 {
				t.Errorf("bytes % x", b[:16])
			}
		}, -1},
		{"name without NUL", Raw{Cmd: "retrieve_session", Name: strings.Repeat("n", SessionNameLen)}, func(t *testing.T, b []byte) {
			if b[8+SessionNameLen-1] != 'n' || b[8+SessionNameLen] != 0 {
				t.Errorf("name field % x", b[8:8+SessionNameLen+1])
			}
		}, -1},
		{"preserve_fd token at offset 8", Raw{Cmd: "preserve_fd", FD: 7, Token: 0x1122334455667788}, func(t *testing.T, b []byte) {
			if le.Uint32(b) != SizeFD || le.Uint32(b[4:]) != 7 || le.Uint64(b[8:]) != 0x1122334455667788 {
				t.Errorf("bytes % x", b[:16])
			}
		}, -1},
		{"oversized size and a tail byte", Raw{Cmd: "finish", Size: 16, Tail: 0xAB}, func(t *testing.T, b []byte) {
			if le.Uint32(b) != 16 || b[SizeFinish] != 0xAB || b[SizeFinish+1] != 0 {
				t.Errorf("bytes % x", b[:16])
			}
		}, -1},
		{"reserved", Raw{Cmd: "get_name", Reserved: 5}, func(t *testing.T, b []byte) {
			if le.Uint32(b) != SizeGetName || le.Uint32(b[4:]) != 5 {
				t.Errorf("bytes % x", b[:8])
			}
		}, -1},
		{"retrieve_fd reads the fd back", Raw{Cmd: "retrieve_fd", FD: 9}, func(t *testing.T, b []byte) {}, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := encodeRaw(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if p := uintptr(a.buf.ptr()); p%8 != 0 {
				t.Errorf("buffer at %#x is not 8-byte aligned", p)
			}
			b := a.buf.bytes()
			if len(b) != rawBufWords*8 || unsafe.Pointer(&b[0]) != a.buf.ptr() {
				t.Fatalf("bytes() does not cover the buffer")
			}
			tc.check(t, b)
			if got := a.fd(); got != tc.fd {
				t.Errorf("fd() = %d, want %d", got, tc.fd)
			}
		})
	}
	for _, r := range []Raw{{Cmd: "frobnicate"}, {Cmd: "create_session", Name: strings.Repeat("n", SessionNameLen+1)}} {
		if _, err := encodeRaw(r); err == nil {
			t.Errorf("encodeRaw(%+v) accepted", r)
		}
	}
}
