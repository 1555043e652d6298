package kernels

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Capabilities a source tree declares, read from its code (the guest
// detects the same things at run time from /sys/module/memfd_luo).
const (
	// CapABIKnob: mm/memfd_luo.c has the memfd_luo.abi= parameter.
	CapABIKnob = "abi-knob"
	// CapMemfdV3: the memfd-v3 format is defined.
	CapMemfdV3 = "memfd-v3"
	// CapABIDefaultV3: without memfd_luo.abi=, new preservations use
	// memfd-v3, which stock 7.3 cannot read.
	CapABIDefaultV3 = "abi-default:v3"
	// CapHugetlb: MFD_HUGETLB memfds can be preserved (with
	// memfd_luo.abi=v3).
	CapHugetlb = "hugetlb"
)

// abiDefault finds the initial value of the memfd_luo.abi= policy.
var abiDefault = regexp.MustCompile(`(?m)^static int memfd_luo_abi = MEMFD_LUO_ABI_(\w+);`)

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
		if bytes.Contains(b, []byte("hugetlb_restore_folio(")) {
			caps[CapHugetlb] = true
		}
		if m := abiDefault.FindSubmatch(b); m != nil {
			caps["abi-default:"+strings.ToLower(string(m[1]))] = true
		}
	}
	return caps
}
