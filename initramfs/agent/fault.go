package agent

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// mapFaultSafe maps ext of fd shared, with protection prot, for the
// calling goroutine, which it locks to its thread with SetPanicOnFault
// on: a SIGBUS or SIGSEGV on the mapping (the kernel refusing a page)
// becomes a panic of that goroutine, which catchFault or the caller's own
// deferred recover turns into an error, instead of a fatal error that
// kills the agent (PID 1). The caller defers the returned undo, which
// unmaps and restores the goroutine.
func mapFaultSafe(fd int, ext plan.Extent, prot int) ([]byte, func(), error) {
	m, err := unix.Mmap(fd, ext.Off, int(ext.Len), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	runtime.LockOSThread()
	old := debug.SetPanicOnFault(true)
	return m, func() {
		debug.SetPanicOnFault(old)
		runtime.UnlockOSThread()
		unix.Munmap(m)
	}, nil
}

// isFault reports whether a recovered value is a memory fault that
// SetPanicOnFault turned into a panic (its error carries the address),
// rather than a bug.
func isFault(v any) bool {
	_, ok := v.(interface{ Addr() uintptr })
	return ok
}

// faultError is a memory fault on a file's mapping. Its outcome is
// "fault".
type faultError struct {
	what  string
	fault any
}

func (e *faultError) Error() string { return fmt.Sprintf("%s: %v", e.what, e.fault) }

// catchFault runs fn, whose memory accesses go through mappings made by
// mapFaultSafe, and returns a fault in it as a *faultError. Any other
// panic goes on: it is a bug of the agent's.
func catchFault(what string, fn func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if !isFault(v) {
				panic(v)
			}
			err = &faultError{what: what, fault: v}
		}
	}()
	fn()
	return nil
}
