package selftests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

// ProjectStageFlag is how memfd-luo's own selftests (selftests/*.c) take
// their stage: "--stage 1" before the kexec, "--stage 2" after.
const ProjectStageFlag = "--stage"

// BuildProject compiles memfd-luo's own kselftest-style programs
// (projDir/*.c, one program per file) against the uAPI headers of the
// kernel tree under test, statically. Like Build it caches by content.
// Every program is a kexec test taking --stage 1|2.
func BuildProject(ctx context.Context, srcDir, projDir, outDir string, log io.Writer) ([]Test, error) {
	if log == nil {
		log = io.Discard
	}
	mains, err := filepath.Glob(filepath.Join(projDir, "*.c"))
	if err != nil || len(mains) == 0 {
		return nil, nil
	}
	unbuilt := func(reason string) []Test {
		var out []Test
		for _, m := range mains {
			out = append(out, Test{Name: strings.TrimSuffix(filepath.Base(m), ".c"), Kexec: true, StageFlag: ProjectStageFlag, Project: true, BuildError: reason})
		}
		return out
	}
	tb, err := prepareToolchain(ctx, srcDir, outDir, log)
	if err != nil {
		return unbuilt(firstLine(err.Error())), nil
	}
	defer tb.unlock()
	outDir, include, hdrKey, ccID := tb.outDir, tb.include, tb.hdrKey, tb.ccID
	// Every program includes the directory's headers: they are part of
	// each program's key.
	hdrs, _ := filepath.Glob(filepath.Join(projDir, "*.h"))
	var shared []byte
	for _, h := range hdrs {
		b, err := os.ReadFile(h)
		if err != nil {
			return nil, fmt.Errorf("selftests: reading %s: %w", h, err)
		}
		shared = append(append(shared, filepath.Base(h)...), b...)
	}
	var tests []Test
	for _, m := range mains {
		name := strings.TrimSuffix(filepath.Base(m), ".c")
		src, err := os.ReadFile(m)
		if err != nil {
			return nil, fmt.Errorf("selftests: reading %s: %w", m, err)
		}
		args := projectFlags(include)
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", hdrKey, ccID, strings.Join(args, " "))
		h.Write(shared)
		h.Write(src)
		dir := filepath.Join(outDir, "project", name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
		bin := filepath.Join(dir, name)
		if !cache.IsDone(dir) {
			fmt.Fprintf(log, "selftests: compiling %s\n", filepath.Base(m))
			if err := compileOne(ctx, name, m, args, dir); err != nil {
				// Against another kernel's headers (a tree
				// without the series' uAPI), the program may
				// not compile: its scenario is skipped with
				// the compiler's first error.
				reason, lp := buildErrorLine(err.Error()), keepBuildLog(outDir, name+"-project", err.Error())
				fmt.Fprintf(log, "selftests: %s cannot be built: %s (log: %s)\n", name, reason, lp)
				tests = append(tests, Test{Name: name, Kexec: true, StageFlag: ProjectStageFlag, Project: true, BuildError: reason, BuildLog: lp})
				continue
			}
		}
		tests = append(tests, Test{Name: name, Binary: bin, Kexec: true, StageFlag: ProjectStageFlag, Project: true})
	}
	return tests, nil
}

func projectFlags(include string) []string {
	return []string{"-static", "-Wall", "-O2", "-isystem", include}
}

// compileOne builds main into dir/name, atomically.
func compileOne(ctx context.Context, name, main string, flags []string, dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	args := append(append([]string{}, flags...), "-o", filepath.Join(tmp, name), main)
	out, err := exec.CommandContext(ctx, CC, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("selftests: compiling %s (%s %s): %w\n%s", name, CC, strings.Join(args, " "), err, out)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", name, err)
	}
	return cache.MarkDone(dir)
}
