package vm

import (
	"slices"
	"testing"

	"github.com/hugelgupf/vmtest/qemu"
)

// vmtest's OptionsFor reads VMTEST_* variables; ownLimits keeps the ones
// that would change what a run tests or how it is judged out.
func TestOwnLimitsOverrideTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name          string
		env           map[string]string
		wantQEMUExtra []string
	}{
		{"no variables", nil, nil},
		{"every variable set", map[string]string{
			"VMTEST_QEMU":          "qemu-system-aarch64 -enable-kvm",
			"VMTEST_KERNEL":        "/other/bzImage",
			"VMTEST_INITRAMFS":     "/other/initrd",
			"VMTEST_KERNEL_APPEND": "init=/bin/sh",
			"VMTEST_TIMEOUT":       "10s",
			"VMTEST_ARCH":          "arm64",
			"VMTEST_QEMU_APPEND":   "-s -d guest_errors",
		}, []string{"-s", "-d", "guest_errors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"VMTEST_QEMU", "VMTEST_KERNEL", "VMTEST_INITRAMFS", "VMTEST_KERNEL_APPEND", "VMTEST_TIMEOUT", "VMTEST_ARCH", "VMTEST_QEMU_APPEND"} {
				t.Setenv(k, tc.env[k])
			}
			o, err := qemu.OptionsFor(qemu.ArchAMD64,
				qemu.WithQEMUCommand("/usr/bin/qemu-system-x86_64"),
				qemu.WithKernel("/k/bzImage"),
				qemu.WithInitramfs("/r/initramfs.cpio"),
				ownLimits("console=ttyS0 liveupdate=on"),
			)
			if err != nil {
				t.Fatal(err)
			}
			if o.VMTimeout != 0 {
				t.Errorf("vmtest's VM timeout %s: the watchdog's -timeout must be the only one", o.VMTimeout)
			}
			cmd, err := o.Cmdline()
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{"/usr/bin/qemu-system-x86_64", "-nographic"}, tc.wantQEMUExtra...)
			want = append(want, "-kernel", "/k/bzImage", "-append", "console=ttyS0 liveupdate=on", "-initrd", "/r/initramfs.cpio")
			if !slices.Equal(cmd, want) {
				t.Errorf("QEMU command\n %q\nwant\n %q", cmd, want)
			}
		})
	}
}
