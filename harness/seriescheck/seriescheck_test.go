package seriescheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/series"
)

// fakeCheckpatch reports one error for every patch that adds "BAD".
const fakeCheckpatch = `#!/usr/bin/perl
my $f = $ARGV[-1]; open(my $h, '<', $f) or die; my $bad = 0;
while (<$h>) { $bad++ if /^\+.*BAD/; }
print "ERROR: bad line\n" if $bad;
print "total: $bad errors, 0 warnings, 0 checks, 3 lines checked\n";
exit($bad ? 1 : 0);
`

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t.invalid"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// makeSeries builds a fake kernel tree and a two-patch series, the second
// of which checkpatch rejects.
func makeSeries(t *testing.T) (*kernelsrc.Source, []series.Patch) {
	t.Helper()
	base := t.TempDir()
	for name, body := range map[string]string{
		"Makefile":              "VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n",
		"mm/memfd_luo.c":        "int a;\n",
		"scripts/checkpatch.pl": fakeCheckpatch,
	} {
		p := filepath.Join(base, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	exec.Command("cp", "-a", base+"/.", work).Run()
	gitIn(t, work, "init", "-q")
	gitIn(t, work, "add", "-A")
	gitIn(t, work, "commit", "-q", "-m", "base")
	for i, line := range []string{"int b;", "int BAD;"} {
		f := filepath.Join(work, "mm/memfd_luo.c")
		b, _ := os.ReadFile(f)
		os.WriteFile(f, append(b, []byte(line+"\n")...), 0o644)
		gitIn(t, work, "commit", "-q", "-am", "mm: memfd_luo: change "+string(rune('a'+i)))
	}
	pdir := t.TempDir()
	gitIn(t, work, "format-patch", "-q", "-o", pdir, "HEAD~2")
	names, _ := filepath.Glob(filepath.Join(pdir, "*.patch"))
	var ps []series.Patch
	for _, n := range names {
		b, _ := os.ReadFile(n)
		ps = append(ps, series.Patch{Name: filepath.Base(n), Path: n, Data: b})
	}
	return &kernelsrc.Source{Dir: base, Version: "7.3.4", Origin: "fake", ID: "fake:" + base}, ps
}

func TestRunReportsPerPatch(t *testing.T) {
	src, ps := makeSeries(t)
	res, err := Run(context.Background(), Options{Base: src, Patches: ps, CacheDir: t.TempDir(), NoBuild: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results for 2 patches", len(res))
	}
	if !res[0].CheckpatchOK || res[1].CheckpatchOK {
		t.Errorf("checkpatch ok = %v, %v; want true, false", res[0].CheckpatchOK, res[1].CheckpatchOK)
	}
	if !strings.Contains(res[1].Checkpatch, "total: 1 errors") {
		t.Errorf("summary %q does not carry the error count", res[1].Checkpatch)
	}
	var b strings.Builder
	Table(&b, "fake", res, true)
	if !strings.Contains(b.String(), "checkpatch FAIL") || !strings.Contains(b.String(), "ERROR: bad line") {
		t.Errorf("table does not show the failing patch:\n%s", b.String())
	}
}

func TestRunRejectsEmptySeries(t *testing.T) {
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("empty series accepted")
	}
}
