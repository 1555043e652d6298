// Package flavour names the kernel build flavours luotest knows and what
// each one changes: the config fragments added to configs/*.config, the
// command line every kernel of the flavour boots with (first boot and every
// kexec), and how much slower its VMs are.
package flavour

import (
	"fmt"
	"strings"
)

// Flavour is a kernel build flavour. The zero value is Normal.
type Flavour string

// Flavours.
const (
	// Normal is configs/*.config alone.
	Normal Flavour = "normal"
	// Debug adds configs/flavours/debug.config (KASAN, lockdep,
	// DEBUG_VM, DEBUG_LIST, hang detectors, fault injection, KUnit)
	// and boots with panic_on_warn=1.
	Debug Flavour = "debug"
)

// Names lists the flavours, for messages.
func Names() []string { return []string{string(Normal), string(Debug)} }

// Parse returns the flavour called s.
func Parse(s string) (Flavour, error) {
	switch Flavour(s) {
	case Normal, "":
		return Normal, nil
	case Debug:
		return Debug, nil
	}
	return "", fmt.Errorf("unknown flavour %q: want %s", s, strings.Join(Names(), " or "))
}

// String returns the flavour's name; the zero value is "normal".
func (f Flavour) String() string {
	if f == "" {
		return string(Normal)
	}
	return string(f)
}

// IsNormal reports whether f is the default flavour.
func (f Flavour) IsNormal() bool { return f == "" || f == Normal }

// Set implements flag.Value, so that a bad -flavour is a usage error.
func (f *Flavour) Set(s string) error {
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Cmdline is what every kernel of the flavour adds to its command line,
// in its first boot and in every kexec into it.
func (f Flavour) Cmdline() string {
	if f == Debug {
		// A WARN, a KASAN report or a lockdep splat ends the
		// kernel: the report is the last thing on the console and
		// the harness names it.
		//
		// acpi=noirq: under KASAN, lockdep and TCG the ACPI
		// interpreter runs the PCI routing method (_PRT) past
		// ACPICA's 30 s loop limit (AE_AML_LOOP_TIMEOUT), the
		// virtio-serial device gets no interrupt and the harness
		// loses its event channel. The BIOS's PIRQ table routes
		// PCI interrupts just as well.
		//
		// no5lvl: TCG's "-cpu max" has LA57, and a 5-level KASAN
		// kernel takes an early interrupt whose irq_desc lock KASAN
		// calls a wild access (do_raw_spin_lock from
		// handle_edge_irq during identify_cpu) in about one VM of
		// three; with 4-level paging it has not been seen since (30
		// VMs of several boots each).
		//
		// kunit.autorun=0: the built-in KUnit suites would run at
		// every boot (9 s of each debug boot under TCG); the kunit
		// scenario turns them back on for its one boot.
		return "panic_on_warn=1 acpi=noirq no5lvl kunit.autorun=0"
	}
	return ""
}

// TimeoutFactor scales the default VM timeout and silence limit. The
// debug flavour's instrumentation (KASAN inline checks on every access,
// lockdep, DEBUG_VM) runs under TCG too: see DebugSlowdown.
func (f Flavour) TimeoutFactor() int {
	if f == Debug {
		return DebugSlowdown
	}
	return 1
}

// DebugSlowdown is how many times longer a VM takes on the debug flavour
// than on the normal one, the worst measured case rounded: on the project
// machine (2 cores, TCG, stock 7.3.4, one VM at a time) basic-64m took
// 8.7 s normal and 51.6 s debug (5.9x), chain-3-hops 19.1 s and 97.4 s
// (5.1x), thp-shmem 14.3 s and 46.4 s (3.2x), 512-small-memfds 26.0 s and
// 48.4 s (1.9x), selftest-liveupdate 5.2 s and 31.9 s (6.1x): the debug
// kernel needs 25-50 s to reach init, the normal one about 1 s. The
// longest quiet stretch on a console grew from 6.3 s (normal) to 28.7 s
// (debug catalogue, busy host), 4.6x. So 6x keeps the normal defaults'
// headroom for both limits: 30 min per VM, 12 min of silence.
const DebugSlowdown = 6

// Fragment is the flavour's own config fragment, relative to configs/,
// or "" for none. Its options must all survive configuration.
func (f Flavour) Fragment() string {
	if f.IsNormal() {
		return ""
	}
	return "flavours/" + string(f) + ".config"
}

// SeriesFragment is the flavour's optional fragment, relative to
// configs/, or "" for none: options that only some trees define (the
// series' test options). Each applies only where the tree's Kconfig
// defines its symbol.
func (f Flavour) SeriesFragment() string {
	if f.IsNormal() {
		return ""
	}
	return "flavours/" + string(f) + "-series.config"
}
