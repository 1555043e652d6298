// Package kernelsrc finds the Linux source tree the harness builds: Debian's
// linux-source package for the major version named in kernel/BASE, fetched
// with apt-get into a private apt state under the cache, or a kernel tree the
// user points at.
package kernelsrc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Source is a kernel source tree ready to be configured and built out of tree.
type Source struct {
	Dir     string // root of the kernel tree; never written by us
	Version string // from the top Makefile: VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION, e.g. "7.3.4"
	Origin  string // human: "Debian linux-source-7.3 7.3.4-1~bpo13+1" or "tree /abs/path"
	ID      string // stable identity for cache keys: "debian:linux-source-7.3=7.3.4-1~bpo13+1" or "tree:/abs/path"
	Mutable bool   // true for a user tree (content can change between runs)
}

var baseRE = regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+$`)

// ReadBase reads repoRoot/kernel/BASE, one line naming the kernel major
// version the project targets, e.g. "7.3".
func ReadBase(repoRoot string) (string, error) {
	p := filepath.Join(repoRoot, "kernel", "BASE")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("kernelsrc: reading the kernel major version: %w (kernel/BASE holds one line such as \"7.3\")", err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !baseRE.MatchString(lines[0]) {
		return "", fmt.Errorf("kernelsrc: %s must hold exactly one MAJOR.MINOR line such as \"7.3\", found %q", p, strings.TrimSpace(string(b)))
	}
	return lines[0], nil
}

// Tree validates a kernel tree given by the user and describes it. The tree
// must be a clean source tree (configured trees cannot be built out of tree).
func Tree(dir string) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("kernelsrc: resolving kernel tree %q: %w", dir, err)
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("kernelsrc: kernel tree: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("kernelsrc: kernel tree %s is not a directory", abs)
	}
	version, err := MakefileVersion(abs)
	if err != nil {
		return nil, fmt.Errorf("kernelsrc: %s is not a Linux kernel tree: %w", abs, err)
	}
	for _, need := range []string{"Kconfig", "arch/x86/Kconfig"} {
		if _, err := os.Stat(filepath.Join(abs, need)); err != nil {
			return nil, fmt.Errorf("kernelsrc: %s is not a Linux kernel tree with x86 support: %s is missing", abs, need)
		}
	}
	// The kernel refuses O= builds from a tree configured in place; say so
	// now, with the fix, rather than after the first make.
	for _, dirt := range []string{".config", "include/config", "arch/x86/include/generated"} {
		if _, err := os.Stat(filepath.Join(abs, dirt)); err == nil {
			return nil, fmt.Errorf("kernelsrc: kernel tree %s was configured or built in place (%s exists) and cannot be built out of tree; clean it with: make -C %s mrproper (this deletes its .config), then rerun", abs, dirt, abs)
		}
	}
	return &Source{
		Dir:     abs,
		Version: version,
		Origin:  "tree " + abs,
		ID:      "tree:" + abs,
		Mutable: true,
	}, nil
}

// MakefileVersion returns the kernel version named by dir/Makefile, built as
// the kernel's own "make kernelversion" does.
func MakefileVersion(dir string) (string, error) {
	p := filepath.Join(dir, "Makefile")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("reading the top Makefile: %w", err)
	}
	v, err := parseMakefileVersion(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

func parseMakefileVersion(b []byte) (string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 0; sc.Scan() && n < 50; n++ { // the version is at the very top
		name, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		switch name {
		case "VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION":
			if _, seen := vars[name]; !seen {
				vars[name] = strings.TrimSpace(val)
			}
		}
	}
	num := regexp.MustCompile(`^[0-9]+$`)
	if !num.MatchString(vars["VERSION"]) || !num.MatchString(vars["PATCHLEVEL"]) {
		return "", errors.New("no numeric VERSION and PATCHLEVEL lines")
	}
	v := vars["VERSION"] + "." + vars["PATCHLEVEL"]
	if s := vars["SUBLEVEL"]; s != "" {
		if !num.MatchString(s) {
			return "", fmt.Errorf("SUBLEVEL %q is not a number", s)
		}
		v += "." + s
	}
	return v + vars["EXTRAVERSION"], nil
}
