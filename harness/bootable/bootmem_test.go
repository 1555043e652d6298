package bootable

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKHOBootmemParam(t *testing.T) {
	tree := func(files map[string]string) string {
		dir := t.TempDir()
		for p, c := range files {
			full := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"prebuilt", "", ScratchParam},
		{"7.3", tree(map[string]string{"kernel/liveupdate/kexec_handover.c": "early_param(\"kho_scratch\", kho_parse_scratch_size);\n"}), ScratchParam},
		{"7.4", tree(map[string]string{"kernel/liveupdate/kexec_handover.c": "early_param(\"kho_bootmem\", kho_parse_bootmem_size);\n"}), BootmemParam},
		{"older layout", tree(map[string]string{"kernel/kexec_handover.c": "early_param(\"kho_bootmem\", f);\n"}), BootmemParam},
		{"documentation only", tree(map[string]string{"kernel/liveupdate/luo_core.c": "/* see kho_bootmem= */\n"}), ScratchParam},
	}
	for _, tc := range tests {
		if got := (Kernel{SrcDir: tc.src}).KHOBootmemParam(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestSpellKHOParam(t *testing.T) {
	tests := []struct{ in, param, want string }{
		{"console=ttyS0 kho_scratch=64M,448M,16M x=1", BootmemParam, "console=ttyS0 kho_bootmem=64M,448M,16M x=1"},
		{"kho_bootmem=1G", ScratchParam, "kho_scratch=1G"},
		{"kho_scratch=1G kho_scratch=2G", ScratchParam, "kho_scratch=1G kho_scratch=2G"},
		{"my_kho_scratch=1 kho=on", BootmemParam, "my_kho_scratch=1 kho=on"},
	}
	for _, tc := range tests {
		if got := SpellKHOParam(tc.in, tc.param); got != tc.want {
			t.Errorf("SpellKHOParam(%q, %s) = %q, want %q", tc.in, tc.param, got, tc.want)
		}
	}
}
