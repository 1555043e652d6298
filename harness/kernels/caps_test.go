package kernels

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSourceCaps(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"stock", map[string]string{"include/linux/kho/abi/memfd.h": `#define MEMFD_LUO_FH_COMPATIBLE "memfd-v2"`, "mm/memfd_luo.c": "static int x;"}, nil},
		{"v3 and knob", map[string]string{
			"include/linux/kho/abi/memfd.h": `#define MEMFD_LUO_FH_COMPATIBLE_V3 "memfd-v3"`,
			"mm/memfd_luo.c":                "module_param_cb(abi, &ops, NULL, 0644);"}, []string{CapMemfdV3, CapABIKnob}},
		{"default v3", map[string]string{
			"include/linux/kho/abi/memfd.h": `#define MEMFD_LUO_FH_COMPATIBLE_V3 "memfd-v3"`,
			"mm/memfd_luo.c":                "static int memfd_luo_abi = MEMFD_LUO_ABI_V3;\nmodule_param_cb(abi, &ops, NULL, 0644);"}, []string{CapMemfdV3, CapABIKnob, CapABIDefaultV3}},
		{"default auto", map[string]string{
			"mm/memfd_luo.c": "static int memfd_luo_abi = MEMFD_LUO_ABI_AUTO;\nmodule_param_cb(abi, &ops, NULL, 0644);"}, []string{CapABIKnob, "abi-default:auto"}},
		{"empty tree", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, body := range tc.files {
				p := filepath.Join(dir, n)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(body), 0o644)
			}
			caps := SourceCaps(dir)
			if len(caps) != len(tc.want) {
				t.Errorf("caps %v, want %v", caps, tc.want)
			}
			for _, c := range tc.want {
				if !caps[c] {
					t.Errorf("missing %s in %v", c, caps)
				}
			}
		})
	}
	if len(SourceCaps("")) != 0 {
		t.Error("no tree declares something")
	}
}
