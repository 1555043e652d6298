package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
)

// profileOf reads what kernel rk says about live update: its image, its
// extra command line and, when it was built from a known source, the
// default policy that source declares.
func profileOf(ctx context.Context, rk bootable.Kernel) (*compat.Profile, error) {
	pol := compat.Policy{Cmdline: rk.Cmdline}
	for c := range kernels.SourceCaps(rk.SrcDir) {
		if d, ok := strings.CutPrefix(c, "abi-default:"); ok {
			pol.SourceDefault = d
		}
	}
	return compat.Inspect(ctx, rk.BzImage, pol)
}

// predictPair predicts a live update from a into b.
func predictPair(ctx context.Context, a, b bootable.Kernel) (compat.Prediction, error) {
	pa, err := profileOf(ctx, a)
	if err != nil {
		return compat.Prediction{}, fmt.Errorf("kernel %s: %w", a.Name, err)
	}
	pb, err := profileOf(ctx, b)
	if err != nil {
		return compat.Prediction{}, fmt.Errorf("kernel %s: %w", b.Name, err)
	}
	return compat.Predict(pa, pb), nil
}

// compatKernel turns a compat argument into a kernel: a spec (built or
// taken from the cache) or the path of an image.
func compatKernel(ctx context.Context, k *kernelFlags, arg, cmdline string) (bootable.Kernel, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return bootable.Kernel{Name: arg, BzImage: arg, Cmdline: cmdline}, nil
	}
	spec := kernels.Spec(arg)
	if err := spec.Valid(); err != nil {
		return bootable.Kernel{}, fmt.Errorf("%q is neither a kernel image nor a kernel spec: %w", arg, err)
	}
	rk, _, err := prepareSpec(ctx, k, spec)
	if err != nil {
		return bootable.Kernel{}, err
	}
	rk.Cmdline = cmdline
	return rk, nil
}

func cmdCompat(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("compat", flag.ContinueOnError)
	var k kernelFlags
	fs.StringVar(&k.repo, "repo", "", "memfd-luo checkout holding kernel/ and configs/ (default: found from the working directory)")
	fs.IntVar(&k.jobs, "j", 0, "kernel build jobs, if a spec needs a build (default: number of CPUs)")
	k.registerFlavour(fs)
	fromArgs := fs.String("from-args", "", "extra command line of kernel A (e.g. memfd_luo.abi=v3)")
	toArgs := fs.String("to-args", "", "extra command line of kernel B")
	asJSON := fs.Bool("json", false, "print the prediction as JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: luotest compat [flags] A B

Predicts from the two kernel images alone whether a live update from A into
B keeps every session, and names what would be lost and why. A and B are
kernel images (vmlinux or bzImage) or kernel specs (patched, stock,
tree:DIR, bzimage:PATH, debian:X.Y[.Z]; built through the cache if needed).
Exit status: 0 keeps every session, 1 loses something, 2 usage or setup.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintf(os.Stderr, "luotest compat: want two kernels (A B), got %d argument(s): %q\n", fs.NArg(), fs.Args())
		return 2
	}
	var ks []bootable.Kernel
	for i, x := range []struct{ arg, cmdline string }{{fs.Arg(0), *fromArgs}, {fs.Arg(1), *toArgs}} {
		rk, err := compatKernel(ctx, &k, x.arg, x.cmdline)
		if err != nil {
			fmt.Fprintf(os.Stderr, "luotest compat: kernel %s (%s): %v\n", "AB"[i:i+1], x.arg, err)
			return 2
		}
		ks = append(ks, rk)
	}
	pr, err := predictPair(ctx, ks[0], ks[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest compat: %v\n", err)
		return 2
	}
	if *asJSON {
		b, _ := json.MarshalIndent(pr, "", "  ")
		fmt.Println(string(b))
	} else {
		fmt.Print(pr.String())
	}
	if !pr.KeepsSessions || len(pr.Losses) > 0 {
		return 1
	}
	return 0
}
