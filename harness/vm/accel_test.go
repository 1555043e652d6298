package vm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shellQEMU writes a QEMU that is the shell script body.
func shellQEMU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeKVM runs the probe on fake QEMUs: one whose firmware reaches
// its boot message, one that fails first.
func TestProbeKVM(t *testing.T) {
	if !KVMUsable() {
		t.Skip("/dev/kvm not usable: the probe stops before QEMU")
	}
	for _, tc := range []struct {
		name   string
		script string
		ok     bool
		why    string
	}{
		{"boot message", `echo "SeaBIOS (version 1.16.2)"; echo "Booting from ROM..."; exec sleep 10`, true, "KVM guest reached the BIOS boot message in"},
		{"no bootable device", `echo "No bootable device."; exec sleep 10`, true, "reached the BIOS boot message"},
		{"QEMU fails", `echo "qemu-system-x86_64: failed to initialize kvm: Operation not permitted" >&2; exit 1`, false,
			`exited before the BIOS boot message (last output: "qemu-system-x86_64: failed to initialize kvm: Operation not permitted")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := ProbeKVM(context.Background(), shellQEMU(t, tc.script))
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("ProbeKVM = %v, %q; want %v, %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestResolveAccel(t *testing.T) {
	t.Run("requested", func(t *testing.T) {
		if a, why := ResolveAccel(context.Background(), AccelTCG, "/nonexistent/qemu", ""); a != AccelTCG || why != "requested" {
			t.Errorf("ResolveAccel(tcg) = %s, %q", a, why)
		}
	})
	t.Run("probed once, then cached", func(t *testing.T) {
		cache := filepath.Join(t.TempDir(), "accel")
		qemu := shellQEMU(t, `echo "Booting from ROM..."; exec sleep 10`)
		a, why := ResolveAccel(context.Background(), AccelAuto, qemu, cache)
		if KVMUsable() && (a != AccelKVM || !strings.Contains(why, "reached the BIOS boot message")) ||
			!KVMUsable() && (a != AccelTCG || !strings.Contains(why, "TCG because /dev/kvm")) {
			t.Fatalf("ResolveAccel = %s, %q", a, why)
		}
		// The cached answer comes without a probe: this QEMU
		// would fail one.
		if err := os.WriteFile(qemu, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if a2, why2 := ResolveAccel(context.Background(), AccelAuto, qemu, cache); a2 != a || why2 != why {
			t.Errorf("cached ResolveAccel = %s, %q; want %s, %q", a2, why2, a, why)
		}
	})
}
