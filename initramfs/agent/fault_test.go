package agent

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// A page the kernel refuses (here: beyond the end of the file, SIGBUS)
// is an error of the step, with outcome "fault"; a bug in the code that
// touches the mapping is not caught: it is the agent's panic.
func TestCatchFault(t *testing.T) {
	pg := int64(unix.Getpagesize())
	tests := []struct {
		name  string
		touch func(m []byte)
		fault bool   // an error of the step
		panic string // goes on as a panic
	}{
		{"in the file", func(m []byte) { m[0] = 1 }, false, ""},
		{"beyond its end", func(m []byte) { m[pg] = 1 }, true, ""},
		{"a bug", func(m []byte) { panic("boom") }, false, "boom"},
		{"an index out of range", func(m []byte) { _ = m[2*pg:][0] }, false, "index out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := unix.MemfdCreate("f", unix.MFD_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if err := unix.Ftruncate(fd, pg); err != nil {
				t.Fatal(err)
			}
			m, unmap, err := mapFaultSafe(fd, plan.Extent{Off: 0, Len: 2 * pg}, unix.PROT_READ|unix.PROT_WRITE)
			if err != nil {
				t.Fatal(err)
			}
			defer unmap()
			var got any
			err = func() (err error) {
				defer func() { got = recover() }()
				return catchFault("touching f", func() { tc.touch(m) })
			}()
			if tc.panic != "" {
				if got == nil || !strings.Contains(fmtAny(got), tc.panic) {
					t.Errorf("panic %v, want one mentioning %q to go on", got, tc.panic)
				}
				return
			}
			if got != nil {
				t.Fatalf("panic %v", got)
			}
			var fe *faultError
			if tc.fault != errors.As(err, &fe) {
				t.Fatalf("catchFault = %v, want a fault: %v", err, tc.fault)
			}
			if tc.fault && (outcome(err) != "fault" || !strings.Contains(err.Error(), "touching f: ")) {
				t.Errorf("outcome %q, error %q", outcome(err), err)
			}
		})
	}
}

func fmtAny(v any) string {
	if e, ok := v.(error); ok {
		return e.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// writeMmap into a page the file no longer has fails the step instead of
// killing the agent.
func TestWriteMmapFault(t *testing.T) {
	pg := int64(unix.Getpagesize())
	fd, err := unix.MemfdCreate("w", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, pg); err != nil {
		t.Fatal(err)
	}
	f := &memfile{name: "w", fd: fd}
	if err := f.writePattern(plan.Extent{Off: 0, Len: pg}, 1, plan.WriteMmap); err != nil {
		t.Fatalf("in the file: %v", err)
	}
	err = f.writePattern(plan.Extent{Off: pg, Len: pg}, 1, plan.WriteMmap)
	if outcome(err) != "fault" || !strings.Contains(err.Error(), "writing w 0x1000+0x1000 through a shared mapping") {
		t.Errorf("beyond the end: %v (outcome %q)", err, outcome(err))
	}
}
