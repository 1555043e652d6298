package vm

import (
	"io"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func TestQEMUOptions(t *testing.T) {
	for _, tc := range []struct {
		accel  Accel
		icount string
		want   []string
	}{
		{AccelKVM, "", []string{"-machine pc -accel kvm -cpu host "}},
		{AccelTCG, "", []string{"-machine pc -accel tcg -cpu max "}},
		{AccelTCG, "shift=0", []string{"-machine pc -accel tcg -cpu max -icount shift=0 "}},
	} {
		t.Run(string(tc.accel)+tc.icount, func(t *testing.T) {
			t.Setenv("VMTEST_QEMU_APPEND", "")
			o := Options{Kernel: "/k/bzImage", Initramfs: "/r/initramfs.cpio", Cmdline: "console=ttyS0 panic=-1", MemoryMB: 512, CPUs: 3, ICount: tc.icount}
			opts, err := qemuOptions(o, "/usr/bin/qemu-system-x86_64", tc.accel, "/tmp/luoqmp1/qmp.sock", nopWriteCloser{io.Discard}, make(chan plan.Event))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range opts.ExtraFiles {
				defer f.Close()
			}
			args, err := opts.Cmdline()
			if err != nil {
				t.Fatal(err)
			}
			cmd := strings.Join(args, " ") + " "
			want := append(tc.want,
				"/usr/bin/qemu-system-x86_64 -nographic ",
				" -m 512 -smp 3 ",
				" -nodefaults -no-reboot -serial mon:stdio ",
				" -device pvpanic-pci ",
				" -qmp unix:/tmp/luoqmp1/qmp.sock,server=on,wait=off ",
				",name="+plan.EventPort+" ",
				" -kernel /k/bzImage -append console=ttyS0 panic=-1 -initrd /r/initramfs.cpio ",
			)
			for _, w := range want {
				if !strings.Contains(cmd, w) {
					t.Errorf("QEMU command lacks %q:\n%s", w, cmd)
				}
			}
			if tc.icount == "" && strings.Contains(cmd, "-icount") {
				t.Errorf("QEMU command has -icount:\n%s", cmd)
			}
			if len(opts.SerialOutput) != 1 || len(opts.Tasks) != 1 {
				t.Errorf("%d serial outputs, %d tasks; want the console and qevent's reader", len(opts.SerialOutput), len(opts.Tasks))
			}
		})
	}
}
