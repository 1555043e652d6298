package kernels

import (
	"bytes"
	"os"
	"path/filepath"
)

// Capabilities a source tree declares, read from its code (the guest
// detects the same things at run time from /sys/module/memfd_luo).
const (
	// CapABIKnob: mm/memfd_luo.c has the memfd_luo.abi= parameter.
	CapABIKnob = "abi-knob"
	// CapMemfdV3: the memfd-v3 format is defined.
	CapMemfdV3 = "memfd-v3"
)

// SourceCaps reads what a kernel tree declares. An empty or unreadable
// tree declares nothing.
func SourceCaps(srcDir string) map[string]bool {
	caps := map[string]bool{}
	if srcDir == "" {
		return caps
	}
	if b, err := os.ReadFile(filepath.Join(srcDir, "include/linux/kho/abi/memfd.h")); err == nil && bytes.Contains(b, []byte(`"memfd-v3"`)) {
		caps[CapMemfdV3] = true
	}
	if b, err := os.ReadFile(filepath.Join(srcDir, "mm/memfd_luo.c")); err == nil && bytes.Contains(b, []byte("module_param_cb(abi,")) {
		caps[CapABIKnob] = true
	}
	return caps
}
