// Package image assembles the test initramfs: the guest agent as /init,
// the plan it executes, and the kernels it kexecs into, using u-root's
// mkuimage uimage library. The agent is compiled with a plain cached
// `go build` and handed to uimage as a file (uimage itself would force
// `go build -a`, about 10 s every time).
package image

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// AgentPackage is the import path of the guest agent command.
const AgentPackage = "./initramfs/cmd/luoagent"

// BuildAgent compiles the guest agent (static, CGO off) from the module
// at repoRoot into out.
func BuildAgent(ctx context.Context, repoRoot, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, AgentPackage)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the guest agent (go build %s in %s): %w\n%s", AgentPackage, repoRoot, err, b)
	}
	return nil
}

// Options describe one initramfs.
type Options struct {
	// Agent is the compiled agent binary.
	Agent string
	// Plan is what the agent runs.
	Plan *plan.Plan
	// Files maps archive paths (relative, e.g. "kernels/1") to host
	// files: the kernels the plan kexecs into, test binaries.
	Files map[string]string
	// Out is the cpio path to write.
	Out string
}

// Create writes the initramfs described by o: an uncompressed newc cpio
// (uncompressed unpacks faster under TCG; the bzImages it carries are
// compressed already).
func Create(o Options) error {
	if err := o.Plan.Validate(); err != nil {
		return err
	}
	dir := filepath.Dir(o.Out)
	planFile := filepath.Join(dir, "plan.json")
	b, err := o.Plan.Marshal()
	if err != nil {
		return fmt.Errorf("encoding plan: %w", err)
	}
	if err := os.WriteFile(planFile, b, 0o644); err != nil {
		return fmt.Errorf("writing plan: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "uimage")
	if err != nil {
		return fmt.Errorf("creating uimage temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	files := []string{
		o.Agent + ":bin/luoagent",
		planFile + ":" + strings.TrimPrefix(plan.PlanPath, "/"),
	}
	var names []string
	for k := range o.Files {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, err := os.Stat(o.Files[k]); err != nil {
			return fmt.Errorf("initramfs file %s: %w", k, err)
		}
		files = append(files, o.Files[k]+":"+strings.TrimPrefix(k, "/"))
	}
	l := llog.New(slog.LevelError, llog.WritePrintf(os.Stderr))
	err = uimage.Create(l,
		uimage.WithBaseArchive(uimage.DefaultRamfs()),
		uimage.WithFiles(files...),
		uimage.WithInit("/bin/luoagent"),
		uimage.WithSkipLDD(),
		uimage.WithTempDir(tmp),
		uimage.WithCPIOOutput(o.Out),
	)
	if err != nil {
		return fmt.Errorf("assembling initramfs %s with uimage: %w", o.Out, err)
	}
	return nil
}
