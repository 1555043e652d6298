package bench

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"64M", 64 * MiB, false},
		{"64MiB", 64 * MiB, false},
		{"2G", 2 * GiB, false},
		{"2g", 2 * GiB, false},
		{"1GiB", GiB, false},
		{"512K", 512 << 10, false},
		{"4096", 4096, false},
		{"4096B", 4096, false},
		{"", 0, true},
		{"-1G", 0, true},
		{"lots", 0, true},
		{"1.5G", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		min, max int64
		want     string
	}{
		{64 * MiB, 2 * GiB, "64M 128M 256M 512M 1G 2G"},
		{64 * MiB, 128 * MiB, "64M 128M"},
		{64 * MiB, 100 * MiB, "64M"},
		{64 * MiB, 32 * MiB, ""},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range Sizes(tt.min, tt.max) {
			got = append(got, FormatSize(s))
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("Sizes(%d, %d) = %v, want %s", tt.min, tt.max, got, tt.want)
		}
	}
}

func TestSelectVariantsAndBackings(t *testing.T) {
	all := Variants()
	got, err := SelectVariants(all, "")
	if err != nil || len(got) != len(all) {
		t.Errorf("empty selection: %v, %v", got, err)
	}
	got, err = SelectVariants(all, "patched, stock")
	if err != nil || len(got) != 2 || got[0].Name != "patched" || got[1].Name != "stock" {
		t.Errorf("patched,stock: %v, %v", got, err)
	}
	if _, err := SelectVariants(all, "vanilla"); err == nil || !strings.Contains(err.Error(), "stock") {
		t.Errorf("unknown variant: %v", err)
	}
	base := 0
	for _, v := range all {
		if v.Baseline {
			base++
		}
		if v.Spec != "stock" && v.Spec != "patched" {
			t.Errorf("variant %s: spec %s", v.Name, v.Spec)
		}
	}
	if base != 1 {
		t.Errorf("%d baselines, want 1", base)
	}
	if bs, err := ParseBackings("4k,sparse"); err != nil || len(bs) != 2 || bs[1] != Sparse {
		t.Errorf("ParseBackings: %v, %v", bs, err)
	}
	for _, bad := range []string{"", "hugetlb", "4k,,x"} {
		if _, err := ParseBackings(bad); err == nil {
			t.Errorf("ParseBackings(%q) accepted", bad)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		u    Unit
		v    float64
		want string
	}{
		{Seconds, 0, "0"},
		{Seconds, 0.0042, "4.20ms"},
		{Seconds, 1.5, "1.500s"},
		{Seconds, 42.25, "42.2s"},
		{Bytes, 512, "512B"},
		{Bytes, 288 << 10, "288K"},
		{Bytes, float64(64 * MiB), "64.0M"},
		{Bytes, float64(2 * GiB), "2.00G"},
		{Bytes, -300 << 10, "-300K"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.u, tt.v); got != tt.want {
			t.Errorf("FormatValue(%s, %v) = %q, want %q", tt.u, tt.v, got, tt.want)
		}
	}
}

func TestMachineParsing(t *testing.T) {
	mi := []byte("MemTotal:       24591232 kB\nMemFree:        1 kB\n")
	if got := parseMemTotal(mi); got != 24591232 {
		t.Errorf("parseMemTotal = %d", got)
	}
	ci := []byte("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
	if got := parseCPUModel(ci); got != "AMD EPYC 7B13" {
		t.Errorf("parseCPUModel = %q", got)
	}
	m := Machine{NProc: 2, MemTotalKB: 24 << 20, CPUModel: "X"}
	if got := m.Describe(); got != "2 CPUs, 24.0 GiB, X" {
		t.Errorf("Describe = %q", got)
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine("qemu-system-x86_64", []string{"-m", "1G", "-serial", "file:/c/ws-rep0/qemu.serial",
		"-append", "console=ttyS0 liveupdate=on panic=-1", "-kernel", "/k/bzImage", "-initrd", "/c/ws-rep0/initrd.cpio"},
		map[string]string{"/c/ws-rep0": "$workspace", "/k/bzImage": "$kernel"})
	want := "qemu-system-x86_64 -m 1G -serial file:$workspace/qemu.serial -append 'console=ttyS0 liveupdate=on panic=-1' -kernel $kernel -initrd $workspace/initrd.cpio"
	if got != want {
		t.Errorf("commandLine =\n%s\nwant\n%s", got, want)
	}
}
