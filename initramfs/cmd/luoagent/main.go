// Command luoagent is PID 1 of the memfd-luo test initramfs. It reads the
// plan from the image, runs the stage named on the kernel command line and
// reports every step to the host over a virtio-serial event channel. It
// never exits: it kexecs into the next kernel or powers the machine off.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hugelgupf/vmtest/guest"

	"github.com/memfd-luo/memfd-luo/initramfs/agent"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// emitter serializes events: racers' beats come from their goroutines.
type emitter struct {
	mu *sync.Mutex
	e  *guest.Emitter[plan.Event]
}

func (e emitter) Emit(ev plan.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.e.Emit(ev)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, plan.ConsolePrefix+" "+format+"\n", args...)
}

func main() {
	// The console is the kernel's /dev/console, already our stdout.
	var em *guest.Emitter[plan.Event]
	mu := &sync.Mutex{}
	stage := -1
	done := func(pass bool, detail string) {
		verdict := "FAIL"
		if pass {
			verdict = "PASS"
		}
		logf("verdict %s: %s", verdict, detail)
		if em != nil {
			ev := plan.Event{Kind: plan.EventDone, Stage: stage, Pass: pass, Detail: detail}
			agent.Stamp(&ev)
			if err := (emitter{mu, em}).Emit(ev); err != nil {
				logf("emitting verdict: %v", err)
			}
			if err := em.Close(); err != nil {
				logf("closing event channel: %v", err)
			}
		}
		agent.PowerOff()
	}
	defer func() {
		if r := recover(); r != nil {
			done(false, fmt.Sprintf("agent panic: %v\n%s", r, debug.Stack()))
		}
	}()

	if err := agent.MountBasics(); err != nil {
		done(false, err.Error())
	}
	cmdline, err := agent.Cmdline()
	if err != nil {
		done(false, fmt.Sprintf("reading /proc/cmdline: %v", err))
	}
	if stage, err = agent.Stage(cmdline); err != nil {
		done(false, err.Error())
	}
	port, err := waitVirtioSerial(plan.EventPort, eventPortWait)
	if err != nil {
		done(false, fmt.Sprintf("finding the event channel %q (is CONFIG_VIRTIO_CONSOLE on?): %v", plan.EventPort, err))
	}
	if em, err = guest.EventChannel[plan.Event](port); err != nil {
		done(false, fmt.Sprintf("opening event channel %s: %v", port, err))
	}
	b, err := os.ReadFile(plan.PlanPath)
	if err != nil {
		done(false, fmt.Sprintf("reading the plan: %v", err))
	}
	p, err := plan.Unmarshal(b)
	if err != nil {
		done(false, err.Error())
	}
	caps := agent.DetectCaps()
	for c := range agent.PrevCaps(cmdline) {
		caps[c] = true
	}
	kernel := agent.KernelIdentity()
	logf("scenario %s stage %d/%d on %s", p.Scenario, stage, len(p.Stages), kernel)
	ev := plan.Event{Kind: plan.EventStage, Stage: stage, Kernel: kernel, Caps: agent.Caps(caps), Cmdline: cmdline}
	agent.Stamp(&ev)
	if err := (emitter{mu, em}).Emit(ev); err != nil {
		logf("emitting stage event: %v", err)
	}

	a := agent.New(p, stage, caps, emitter{mu, em}, agent.Machine{}, os.Stdout)
	ctx := context.Background()
	go a.ReapOrphans(ctx)
	if err := a.RunStage(ctx); err != nil {
		done(false, err.Error())
	}
	if stage != len(p.Stages)-1 {
		done(false, fmt.Sprintf("stage %d ended without kexec", stage))
	}
	if n := a.Failed(); n > 0 {
		done(false, fmt.Sprintf("%d step(s) missed their expectation", n))
	}
	done(true, "all steps met their expectations")
}

// eventPortWait bounds the wait for the event channel's device: under a
// debug kernel (KASAN, TCG) virtio probing can finish after PID 1 starts.
const eventPortWait = 60 * time.Second

// waitVirtioSerial looks the virtio-serial port up until it appears or
// limit passes.
func waitVirtioSerial(name string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		port, err := guest.VirtioSerialDevice(name)
		if err == nil || time.Now().After(deadline) {
			return port, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
