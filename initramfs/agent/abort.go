package agent

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/pattern"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// hammerPace is the pause between two pages a hammer touches: slow enough
// that the hammers are still busy when the live update is aborted seconds
// later, fast enough to finish in a few seconds after it.
const hammerPace = 10 * time.Millisecond

// hammer touches the pages of one extent of a file in order, one at a
// time, through a shared mapping (fault) or pwrite (write), and records
// what happened: pages done, the longest a single page took, and a SIGBUS
// or an error that stopped it.
type hammer struct {
	how     string // "fault" or "write"
	ext     plan.Extent
	done    int64
	longest time.Duration
	err     error
}

func (h *hammer) run(f *memfile, seed uint64, stop *atomic.Bool) {
	pg := int64(unix.Getpagesize())
	buf := make([]byte, pg)
	var m []byte
	if h.how == "fault" {
		var err error
		var unmap func()
		if m, unmap, err = mapFaultSafe(f.fd, h.ext, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			h.err = err
			return
		}
		defer unmap()
		defer func() {
			if r := recover(); r != nil {
				if !isFault(r) {
					panic(r) // a bug of the agent's, not the kernel's doing
				}
				h.err = fmt.Errorf("fault at page %d: %v", h.done, r)
			}
		}()
	}
	for off := h.ext.Off; off < h.ext.End() && !stop.Load(); off += pg {
		start := time.Now()
		if h.how == "fault" {
			pattern.Fill(m[off-h.ext.Off:off-h.ext.Off+pg], seed, off)
		} else {
			pattern.Fill(buf, seed, off)
			if _, err := unix.Pwrite(f.fd, buf, off); err != nil {
				h.err = fmt.Errorf("pwrite at %#x: %w", off, err)
				return
			}
		}
		h.longest = max(h.longest, time.Since(start))
		h.done++
		time.Sleep(hammerPace)
	}
}

// kexecAbort runs an OpKexecAbort step: with one goroutine faulting into
// the first half of s.Extent and one writing into the second half, it
// starts a live update that must be aborted (the test hook fails a later
// file's freeze), and reports how the hammers fared. The pages they wrote
// become part of what the file must hold.
func (a *Agent) kexecAbort(s plan.Step) result {
	f, ok := a.files[s.File]
	if !ok {
		return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
	}
	kernel, cmdline := s.Kernel, s.Cmdline
	if kernel == "" {
		// The kernel this stage kexecs into at its end.
		st := a.plan.Stages[a.stage].Steps
		if last := st[len(st)-1]; last.Op == plan.OpKexec {
			kernel, cmdline = last.Kernel, last.Cmdline
		}
	}
	if kernel == "" {
		return result{err: errors.New("plan error: kexec_abort without a kernel, and the stage does not end in a kexec")}
	}
	if cmdline == "" {
		cmdline, _ = Cmdline()
	}
	pg := int64(unix.Getpagesize())
	half := (s.Extent.Len / 2) &^ (pg - 1)
	hs := []*hammer{
		{how: "fault", ext: plan.Extent{Off: s.Extent.Off, Len: half}},
		{how: "write", ext: plan.Extent{Off: s.Extent.Off + half, Len: s.Extent.Len - half}},
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		a.goSafe(h.how+" hammer", func() { h.run(f, s.Seed, &stop) }, wg.Done)
	}
	// Let the hammers get going, then start the live update.
	time.Sleep(20 * hammerPace)
	start := time.Now()
	kerr := a.sys.Kexec(kernel, NextCmdline(cmdline, a.stage+1, a.caps))
	took := time.Since(start)
	// Give the hammers the time they need to finish their extents.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Duration(s.Extent.Len/pg)*hammerPace + 30*time.Second):
		stop.Store(true)
		<-done
	}

	res := result{err: kerr, values: map[string]int64{"reboot_ms": took.Milliseconds()}}
	var problems []string
	for _, h := range hs {
		res.values[h.how+"_pages"] = h.done
		res.values[h.how+"_longest_ms"] = h.longest.Milliseconds()
		res.values[h.how+"_failed"] = 0
		if h.err != nil {
			res.values[h.how+"_failed"] = 1
			problems = append(problems, h.how+": "+h.err.Error())
		}
		if h.done > 0 {
			a.addWrite(plan.Step{File: s.File, Extent: plan.Extent{Off: h.ext.Off, Len: h.done * pg}, Seed: s.Seed})
		}
	}
	res.detail = fmt.Sprintf("reboot(KEXEC) took %s and returned %v", took.Round(time.Millisecond), kerr)
	if len(problems) > 0 {
		res.detail += "; " + fmt.Sprint(problems)
	}
	return res
}
