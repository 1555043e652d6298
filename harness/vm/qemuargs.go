package vm

import (
	"fmt"
	"io"

	"github.com/hugelgupf/vmtest/qemu"
	"github.com/hugelgupf/vmtest/qemu/qevent"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// qemuOptions configures QEMU (qemuPath) for o: the kernel, its command
// line, the machine, the serial console copied to serial, the monitor on
// sock, the agent's event channel feeding events, and the run's tasks.
func qemuOptions(o Options, qemuPath string, a Accel, sock string, serial io.WriteCloser, events chan<- plan.Event, tasks ...qemu.Task) (*qemu.Options, error) {
	return qemu.OptionsFor(qemu.ArchAMD64,
		qemu.WithQEMUCommand(qemuPath),
		qemu.WithKernel(o.Kernel),
		qemu.WithInitramfs(o.Initramfs),
		ownLimits(o.Cmdline),
		qemu.WithSerialOutput(serial),
		machine(a),
		icount(o.ICount),
		size(o.MemoryMB, o.CPUs),
		serialConsole(),
		pvpanic(),
		qmpSocket(sock),
		// EventChannel, not EventChannelCallback: the callback's
		// consumer stops at cancellation, which VM.Wait does before
		// waiting for tasks, so a last event still in flight blocks
		// the reader forever. The caller reads events until the
		// channel is closed, which qevent does on every path.
		qevent.EventChannel[plan.Event](plan.EventPort, events),
		qemu.WithTask(tasks...),
	)
}

// The QEMU settings of a run, each a vmtest configuration function.
// vmtest's own HaltOnKernelPanic is not used: its panic=-1 belongs to the
// kernel command line, which the caller owns whole (runner.BaseCmdline
// has it, for the kernels a run kexecs into too).

// machine selects the PC machine, the accelerator and the CPU model that
// goes with it (the host's under KVM).
func machine(a Accel) qemu.Fn {
	cpu := "max"
	if a == AccelKVM {
		cpu = "host"
	}
	return qemu.ArbitraryArgs("-machine", "pc", "-accel", string(a), "-cpu", cpu)
}

// icount turns on QEMU's instruction-counted clock (Options.ICount);
// nothing when setting is "".
func icount(setting string) qemu.Fn {
	if setting == "" {
		return qemu.ArbitraryArgs()
	}
	return qemu.ArbitraryArgs("-icount", setting)
}

// size sets the guest's memory and CPUs.
func size(memoryMB, cpus int) qemu.Fn {
	return qemu.ArbitraryArgs("-m", fmt.Sprint(memoryMB), "-smp", fmt.Sprint(cpus))
}

// serialConsole makes the serial port the only device beyond the
// machine's own, on QEMU's stdio (which vmtest reads), multiplexed with
// the human monitor; a guest reset ends QEMU instead of rebooting.
func serialConsole() qemu.Fn {
	return qemu.ArbitraryArgs("-nodefaults", "-no-reboot", "-serial", "mon:stdio")
}

// pvpanic lets the guest kernel tell QEMU it panicked (QMP
// GUEST_PANICKED).
func pvpanic() qemu.Fn { return qemu.ArbitraryArgs("-device", "pvpanic-pci") }

// qmpSocket opens QEMU's monitor on a Unix socket at sock without
// waiting for a client.
func qmpSocket(sock string) qemu.Fn {
	return qemu.ArbitraryArgs("-qmp", "unix:"+sock+",server=on,wait=off")
}

// ownLimits replaces what vmtest's qemu.OptionsFor reads from the
// environment with the run's own settings: the kernel command line is
// exactly cmdline (VMTEST_KERNEL_APPEND would reach the first boot only,
// not the kernels it kexecs into, and no rerun would repeat it), and
// vmtest's own VM timeout (VMTEST_TIMEOUT) is off: the watchdog's -timeout
// asks the guest for its stacks before it stops QEMU, and a run vmtest
// killed would be judged a kernel failure ("VM exited without a
// verdict"). VMTEST_QEMU_APPEND stays: extra QEMU arguments for debugging
// (-s, -d ...), recorded in qemu-cmdline.txt.
func ownLimits(cmdline string) qemu.Fn {
	return func(_ *qemu.IDAllocator, opts *qemu.Options) error {
		opts.KernelArgs = cmdline
		opts.VMTimeout = 0
		return nil
	}
}
