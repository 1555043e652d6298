// Package bootable holds the one type the build layer (kernels) hands to
// the VM layer (runner): a kernel a run can boot. Neither layer imports the
// other; both import this.
package bootable

import (
	"context"

	"github.com/memfd-luo/memfd-luo/harness/flavour"
)

// Kernel is a built kernel a run can boot.
type Kernel struct {
	// Name labels the kernel ("stock", "patched", "tree").
	Name    string
	BzImage string
	Release string
	// SrcDir is the source tree it was built from ("" for a prebuilt
	// image): its own selftests are built from it.
	SrcDir string
	// Cmdline is added to the command line this kernel boots with
	// (e.g. memfd_luo.abi=v2).
	Cmdline string
	// Flavour is the kernel's build flavour; its command line
	// (flavour.Flavour.Cmdline) is added to every boot of the kernel,
	// the first one and every kexec into it.
	Flavour flavour.Flavour `json:",omitempty"`
	// Config is the path of the kernel's .config ("" for a prebuilt
	// image).
	Config string `json:",omitempty"`
}

// Prepare makes the kernel named by a spec bootable (building it if need
// be).
type Prepare[S comparable] func(context.Context, S) (Kernel, error)

// Once returns a Prepare that prepares each spec at most once while it
// succeeds: a later call for a prepared spec returns the same kernel. A
// failure is not remembered, so the next call tries again.
func Once[S comparable](p Prepare[S]) Prepare[S] {
	done := map[S]Kernel{}
	return func(ctx context.Context, s S) (Kernel, error) {
		if k, ok := done[s]; ok {
			return k, nil
		}
		k, err := p(ctx, s)
		if err == nil {
			done[s] = k
		}
		return k, err
	}
}
