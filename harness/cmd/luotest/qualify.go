package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/qualify"
	"github.com/memfd-luo/memfd-luo/harness/shell"
)

func cmdQualify(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("qualify", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	k.registerFlavour(fs)
	var f runFlags
	f.register(fs)
	from := fs.String("from", "", "kernel A, which live-updates into B (patched, stock, tree:DIR, bzimage:PATH, debian:X.Y[.Z])")
	to := fs.String("to", "", "kernel B")
	fromArgs := fs.String("from-args", "", "extra command line for kernel A")
	toArgs := fs.String("to-args", "", "extra command line for kernel B")
	hops := fs.Int("hops", qualify.DefaultHops, "kexecs in the soak that alternates A and B")
	soakOnly := fs.Bool("soak-only", false, "only the soak (skip the catalogue both ways): a long soak of a pair already qualified")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if refuseFlags(fs, "name the kernels with -from and -to", "tree", "kernel", "base") {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "luotest qualify: %v\n", err)
		return 2
	}
	if *from == "" || *to == "" {
		return fail(fmt.Errorf("-from A and -to B are both needed"))
	}
	for _, s := range []string{*from, *to} {
		if err := kernels.Spec(s).Valid(); err != nil {
			return fail(err)
		}
	}
	if *hops < 2 {
		return fail(fmt.Errorf("-hops %d: the soak needs at least 2 kexecs (A -> B -> A)", *hops))
	}
	f.scaleTimeouts(fs, k.flavour)
	// The soak is one VM for every hop: without -timeout, give it
	// qualify.SoakTimeout's budget (a hop takes 5-7 s under TCG).
	if !flagsGiven(fs)["timeout"] {
		f.timeout = max(f.timeout, qualify.SoakTimeout(*hops, k.flavour.TimeoutFactor()))
	}
	if err := f.check(); err != nil {
		return fail(err)
	}
	start := time.Now()
	root, err := repoRoot(k.repo)
	if err != nil {
		return fail(err)
	}
	dir := runDir(root, f.out)
	e, err := newEnv(ctx, &f, root, dir)
	if err != nil {
		return fail(err)
	}
	e.flavour = k.flavour
	soakRerun := append([]string{rerunBinary(root), "qualify"}, k.flavourArgs()...)
	soakRerun = append(soakRerun, "-from", *from, "-to", *to, "-hops", strconv.Itoa(*hops), "-soak-only")
	if *fromArgs != "" {
		soakRerun = append(soakRerun, "-from-args", *fromArgs)
	}
	if *toArgs != "" {
		soakRerun = append(soakRerun, "-to-args", *toArgs)
	}
	res, err := qualify.Run(ctx, qualify.Options{
		From: kernels.Spec(*from), To: kernels.Spec(*to), FromArgs: *fromArgs, ToArgs: *toArgs, Hops: *hops, SoakOnly: *soakOnly,
		Dir: dir, Out: os.Stdout, Progress: os.Stderr,
		Rerun:     append([]string{rerunBinary(root), "run"}, k.flavourArgs()...),
		SoakRerun: shell.Quote(soakRerun...),
	}, catalogueDeps(&k, &f, root, e))
	if err != nil {
		return fail(err)
	}
	fmt.Println()
	qualify.WriteTable(os.Stdout, res)
	if _, err := qualify.WriteArtefacts(dir, res); err != nil {
		fmt.Fprintf(os.Stderr, "luotest qualify: %v\n", err)
	}
	c := qualify.Counts(res)
	fmt.Printf("artefacts: %s (qualify.txt, qualify.json, qualify.xml, soak-*.png/svg; upgrade/, rollback/, soak/ with each part's results.{json,xml,ktap})\n", dir)
	fmt.Printf("luotest qualify: %s; scenarios %d passed, %d failed, %d skipped\nwall time %.1fs\n", res.Verdict,
		c.Pass, c.Fail+c.Error+c.Timeout, c.Skip, time.Since(start).Seconds())
	return qualify.ExitCode(res)
}
