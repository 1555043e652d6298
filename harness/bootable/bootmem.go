package bootable

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
)

// KHO's early boot memory (the areas the next kernel boots from) is
// sized with kho_scratch= up to 7.3 and kho_bootmem= from 7.4, which
// renamed "KHO scratch" to "KHO bootmem" (the old name is not kept).
const (
	ScratchParam = "kho_scratch"
	BootmemParam = "kho_bootmem"
)

var khoParamRE = regexp.MustCompile(`\b(kho_scratch|kho_bootmem)=`)

// KHOBootmemParam names the parameter kernel k sizes KHO's boot memory
// with, read from its source: kho_bootmem when the tree registers it,
// else kho_scratch, which is also the answer for a prebuilt image
// without source.
func (k Kernel) KHOBootmemParam() string {
	if k.SrcDir == "" {
		return ScratchParam
	}
	files, _ := filepath.Glob(filepath.Join(k.SrcDir, "kernel", "liveupdate", "*.c"))
	more, _ := filepath.Glob(filepath.Join(k.SrcDir, "kernel", "*.c"))
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(`early_param("`+BootmemParam+`"`)) {
			return BootmemParam
		}
	}
	return ScratchParam
}

// SpellKHOParam rewrites kho_scratch= and kho_bootmem= in cmdline to the
// spelling param, so that a scenario can size KHO's boot memory on any
// kernel.
func SpellKHOParam(cmdline, param string) string {
	return khoParamRE.ReplaceAllString(cmdline, param+"=")
}
