package kernelsrc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// indexFormat is the apt-get indextargets line format PickMirror reads.
const indexFormat = "$(REPO_URI) $(RELEASE) $(LABEL)"

// MirrorFromApt returns the URI of the Debian archive the machine's own apt
// configuration uses, e.g. "http://mirror.invalid/debian/", so that the
// kernel source is fetched from the same place as every other package.
func MirrorFromApt(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("kernelsrc: finding the Debian mirror: apt-get not found: %w", err)
	}
	// With release information (labels) when the machine's lists exist, and
	// without, which still lists every configured source on a machine that
	// never ran apt-get update.
	var all strings.Builder
	for _, extra := range [][]string{nil, {"--no-release-info"}} {
		args := append([]string{"indextargets"}, extra...)
		args = append(args, "--format", indexFormat)
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = aptEnv()
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("kernelsrc: listing apt sources with apt-get indextargets: %w", err)
		}
		all.Write(out)
	}
	return PickMirror(all.String())
}

// debianSuites are the Debian codenames and suite names a release of the
// Debian archive starts with; used when apt has no label for a source.
var debianSuites = map[string]bool{
	"stable": true, "oldstable": true, "oldoldstable": true, "testing": true,
	"unstable": true, "experimental": true, "sid": true,
	"buster": true, "bullseye": true, "bookworm": true, "trixie": true,
	"forky": true, "duke": true,
}

// PickMirror picks the Debian archive URI out of apt-get indextargets output
// in the format "$(REPO_URI) $(RELEASE) $(LABEL)" (the label may be missing
// or left as the literal "$(LABEL)" when apt has no release information).
// It skips the security archive and third-party repositories, prefers a
// source of a plain release (e.g. "trixie") over its -updates or -backports
// suites, and otherwise keeps apt's order. The URI is returned with a
// trailing slash.
func PickMirror(text string) (string, error) {
	type entry struct{ uri, release, label string }
	var entries []entry
	labels := map[string][]string{} // URI -> labels seen for it
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		e := entry{uri: f[0], release: f[1], label: strings.Join(f[2:], " ")}
		if strings.HasPrefix(e.label, "$(") {
			e.label = ""
		}
		if e.label != "" {
			labels[e.uri] = append(labels[e.uri], e.label)
		}
		entries = append(entries, e)
	}
	debianLabel := func(label string) bool {
		return (label == "Debian" || strings.HasPrefix(label, "Debian ")) && !strings.Contains(strings.ToLower(label), "security")
	}
	best, bestRank := "", 99
	var seen []string
	for _, e := range entries {
		seen = append(seen, e.uri+" "+e.release)
		if strings.HasPrefix(e.uri, "cdrom:") || strings.HasSuffix(e.release, "-security") ||
			strings.Contains(e.uri, "debian-security") || strings.Contains(strings.ToLower(e.label), "security") {
			continue
		}
		if ls := labels[e.uri]; len(ls) > 0 {
			ok := false
			for _, l := range ls {
				ok = ok || debianLabel(l)
			}
			if !ok {
				continue
			}
		} else {
			base, _, _ := strings.Cut(e.release, "-")
			if !debianSuites[base] {
				continue
			}
		}
		rank := 1
		if !strings.Contains(e.release, "-") {
			rank = 0
		}
		if rank < bestRank {
			best, bestRank = e.uri, rank
		}
	}
	if best == "" {
		if len(seen) == 0 {
			return "", errors.New("kernelsrc: finding the Debian mirror: apt lists no sources at all (apt-get indextargets printed nothing); configure apt or give the mirror explicitly")
		}
		return "", fmt.Errorf("kernelsrc: finding the Debian mirror: none of the apt sources is the Debian archive (saw: %s); give the mirror explicitly", strings.Join(dedup(seen), ", "))
	}
	if !strings.HasSuffix(best, "/") {
		best += "/"
	}
	return best, nil
}

func dedup(s []string) []string {
	var out []string
	m := map[string]bool{}
	for _, x := range s {
		if !m[x] {
			m[x] = true
			out = append(out, x)
		}
	}
	return out
}
