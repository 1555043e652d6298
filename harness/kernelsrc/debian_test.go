package kernelsrc

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

const fakeAptGet = `#!/bin/sh
while [ $# -gt 0 ]; do
	case "$1" in
	-o) shift 2 ;;
	*) break ;;
	esac
done
echo "apt-get $*" >> "$FAKE_CALLS"
case "$1" in
indextargets)
	printf 'http://mirror.invalid/debian-security/ bookworm-security Debian-Security\nhttp://mirror.invalid/debian/ bookworm Debian\n' ;;
update)
	if [ -n "$FAKE_UPDATE_FAIL" ]; then
		echo "Err:1 http://mirror.invalid/debian trixie-backports InRelease"
		echo "E: Failed to fetch http://mirror.invalid/debian/dists/trixie-backports/InRelease  Could not resolve 'mirror.invalid'" >&2
		exit 100
	fi ;;
download)
	v=${2#*=}
	cp "$FAKE_DEB" "./${2%%=*}_${v}_all.deb" ;;
esac
`

const fakeAptCache = `#!/bin/sh
while [ $# -gt 0 ]; do
	case "$1" in
	-o) shift 2 ;;
	*) break ;;
	esac
done
echo "apt-cache $*" >> "$FAKE_CALLS"
if [ "$1" = madison ]; then
	printf '%s' "$FAKE_MADISON"
	exit 0
fi
echo "$2:"
echo "  Installed: (none)"
echo "  Candidate: ${FAKE_CANDIDATE:-(none)}"
`

// fakeApt puts fake apt-get and apt-cache first in PATH and returns the file
// recording their calls.
func fakeApt(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	for name, body := range map[string]string{"apt-get": fakeAptGet, "apt-cache": fakeAptCache} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	calls := filepath.Join(t.TempDir(), "calls")
	t.Setenv("FAKE_CALLS", calls)
	t.Setenv("FAKE_UPDATE_FAIL", "")
	return calls
}

// fakeDeb builds a linux-source-<major> package holding a tiny kernel tree.
func fakeDeb(t *testing.T, major, version string) string {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "tar", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("building a test package needs %s: %v", tool, err)
		}
	}
	work := t.TempDir()
	pkg := "linux-source-" + major
	writeTree(t, filepath.Join(work, "tree", pkg), map[string]string{
		"Makefile":         "VERSION = 9\nPATCHLEVEL = 9\nSUBLEVEL = 1\nEXTRAVERSION =\n",
		"Kconfig":          "mainmenu \"fake\"\n",
		"arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
	})
	root := filepath.Join(work, "root")
	writeTree(t, root, map[string]string{
		"DEBIAN/control": "Package: " + pkg + "\nVersion: " + version + "\nArchitecture: all\nMaintainer: memfd-luo <maintainers@memfd-luo.invalid>\nDescription: test\n",
		"usr/src/":       "",
	})
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("tar", "-cJf", filepath.Join(root, "usr/src", pkg+".tar.xz"), "-C", filepath.Join(work, "tree"), pkg)
	deb := filepath.Join(work, "fake.deb")
	run("dpkg-deb", "--root-owner-group", "-b", root, deb)
	return deb
}

func testOptions(t *testing.T, log *bytes.Buffer) DebianOptions {
	keyring := filepath.Join(t.TempDir(), "keyring.gpg")
	if err := os.WriteFile(keyring, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return DebianOptions{Major: "9.9", CacheDir: t.TempDir(), Mirror: "http://mirror.invalid/debian/", Log: log, Keyring: keyring}
}

func countCalls(t *testing.T, calls, prefix string) int {
	b, _ := os.ReadFile(calls)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func TestDebianFromScratchThenReuse(t *testing.T) {
	calls := fakeApt(t)
	const version = "9.9.1-1~bpo13+1"
	t.Setenv("FAKE_DEB", fakeDeb(t, "9.9", version))
	t.Setenv("FAKE_CANDIDATE", version)
	var log bytes.Buffer
	o := testOptions(t, &log)
	o.Mirror = "" // taken from the fake apt configuration

	for i, wantDownloads := range []int{1, 1} {
		s, err := Debian(context.Background(), o)
		if err != nil {
			t.Fatalf("call %d: %v\nlog:\n%s", i, err, log.String())
		}
		want := Source{
			Dir:     filepath.Join(o.CacheDir, "src", version, "linux-source-9.9"),
			Version: "9.9.1",
			Origin:  "Debian linux-source-9.9 " + version,
			ID:      "debian:linux-source-9.9=" + version,
		}
		if *s != want {
			t.Errorf("call %d: Source = %+v, want %+v", i, *s, want)
		}
		if n := countCalls(t, calls, "apt-get download"); n != wantDownloads {
			t.Errorf("call %d: %d downloads, want %d", i, n, wantDownloads)
		}
	}
	if !cache.IsDone(filepath.Join(o.CacheDir, "src", version)) {
		t.Error("extraction not marked complete")
	}
	list, err := os.ReadFile(filepath.Join(o.CacheDir, "apt", "etc", "sources.list"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "deb [signed-by=" + o.Keyring + "] http://mirror.invalid/debian/ trixie-backports main\n"; string(list) != want {
		t.Errorf("sources.list = %q, want %q", list, want)
	}
	if _, err := os.Stat(filepath.Join(o.CacheDir, "src", version, "usr")); err == nil {
		t.Error("the intermediate tarball directory was left behind")
	}
	if !strings.Contains(log.String(), "already extracted") {
		t.Errorf("second call did not log the reuse:\n%s", log.String())
	}
}

// A release spec (debian:9.9 or debian:9.9.1) reads several suites,
// takes the newest version of the release, keeps its apt state apart
// from the base's, and reuses fresh lists without an update.
func TestDebianSuitesAndRelease(t *testing.T) {
	calls := fakeApt(t)
	t.Setenv("FAKE_MADISON", `linux-source-9.9 | 9.9.2-1 | http://mirror.invalid/debian sid/main amd64 Packages
linux-source-9.9 | 9.9.1-1~bpo13+1 | http://mirror.invalid/debian trixie-backports/main amd64 Packages
linux-source-9.9 | 9.9.1-2 | http://mirror.invalid/debian sid/main amd64 Packages
`)
	tests := []struct {
		upstream, version string
	}{
		{"", "9.9.2-1"},
		{"9.9.1", "9.9.1-2"},
	}
	for _, tc := range tests {
		t.Setenv("FAKE_DEB", fakeDeb(t, "9.9", tc.version))
		var log bytes.Buffer
		o := testOptions(t, &log)
		o.Suites = []string{"trixie-backports", "sid"}
		o.Upstream = tc.upstream
		o.ListsMaxAge = time.Hour
		for i := 0; i < 2; i++ {
			s, err := Debian(context.Background(), o)
			if err != nil {
				t.Fatalf("%q call %d: %v\nlog:\n%s", tc.upstream, i, err, log.String())
			}
			if want := "debian:linux-source-9.9=" + tc.version; s.ID != want {
				t.Errorf("%q: ID %q, want %q", tc.upstream, s.ID, want)
			}
		}
		list, err := os.ReadFile(filepath.Join(o.CacheDir, "apt-trixie-backports+sid", "etc", "sources.list"))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(list), "deb "); n != 2 || !strings.Contains(string(list), " sid main") {
			t.Errorf("sources.list %q", list)
		}
		if !strings.Contains(log.String(), "reused (younger than 1h0m0s") {
			t.Errorf("second call did not reuse the lists:\n%s", log.String())
		}
	}
	if n := countCalls(t, calls, "apt-get update"); n != 2 {
		t.Errorf("%d updates for two cache directories, want 2 (one each)", n)
	}
	var log bytes.Buffer
	o := testOptions(t, &log)
	o.Suites, o.Upstream = []string{"sid"}, "9.9.7"
	if _, err := Debian(context.Background(), o); err == nil || !strings.Contains(err.Error(), "of release 9.9.7 is not in") {
		t.Errorf("missing release: %v", err)
	}
	o.Upstream = "9.8.1"
	if _, err := Debian(context.Background(), o); err == nil || !strings.Contains(err.Error(), "not a release of 9.9") {
		t.Errorf("release of another major: %v", err)
	}
}

func TestDebianRelativeCacheDir(t *testing.T) {
	fakeApt(t)
	const version = "9.9.1-1"
	t.Setenv("FAKE_DEB", fakeDeb(t, "9.9", version))
	t.Setenv("FAKE_CANDIDATE", version)
	var log bytes.Buffer
	o := testOptions(t, &log)
	t.Chdir(o.CacheDir)
	o.CacheDir = "c"
	s, err := Debian(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if !filepath.IsAbs(s.Dir) {
		t.Errorf("Dir %q is not absolute", s.Dir)
	}
}

func TestDebianIncompleteExtractionIsRedone(t *testing.T) {
	calls := fakeApt(t)
	const version = "9.9.1-1"
	t.Setenv("FAKE_DEB", fakeDeb(t, "9.9", version))
	t.Setenv("FAKE_CANDIDATE", version)
	var log bytes.Buffer
	o := testOptions(t, &log)
	// What an interrupted run leaves: the tree without the marker.
	half := filepath.Join(o.CacheDir, "src", version)
	writeTree(t, half, map[string]string{"linux-source-9.9/Makefile": "VERSION = 1\n"})
	s, err := Debian(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if s.Version != "9.9.1" || countCalls(t, calls, "apt-get download") != 1 {
		t.Errorf("incomplete extraction was trusted: version %q, log:\n%s", s.Version, log.String())
	}
}

func TestDebianOfflineReuse(t *testing.T) {
	fakeApt(t)
	const version = "9.9.1-1"
	t.Setenv("FAKE_DEB", fakeDeb(t, "9.9", version))
	t.Setenv("FAKE_CANDIDATE", version)
	var log bytes.Buffer
	o := testOptions(t, &log)
	if _, err := Debian(context.Background(), o); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	t.Setenv("FAKE_UPDATE_FAIL", "1")
	t.Setenv("FAKE_CANDIDATE", "")
	log.Reset()
	s, err := Debian(context.Background(), o)
	if err != nil {
		t.Fatalf("offline reuse: %v\nlog:\n%s", err, log.String())
	}
	if s.ID != "debian:linux-source-9.9="+version {
		t.Errorf("ID = %q", s.ID)
	}
	if !strings.Contains(log.String(), "apt-get update failed") || !strings.Contains(log.String(), "extraction made earlier") {
		t.Errorf("log does not say the extraction was reused offline:\n%s", log.String())
	}
}

func TestDebianErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, o *DebianOptions)
		wantLike []string
	}{
		{
			name: "unreachable mirror",
			setup: func(t *testing.T, o *DebianOptions) {
				fakeApt(t)
				t.Setenv("FAKE_UPDATE_FAIL", "1")
			},
			wantLike: []string{"apt-get update failed", "http://mirror.invalid/debian/", "trixie-backports", "Could not resolve", "apt.log"},
		},
		{
			name: "package missing from suite",
			setup: func(t *testing.T, o *DebianOptions) {
				fakeApt(t)
				t.Setenv("FAKE_CANDIDATE", "")
			},
			wantLike: []string{"linux-source-9.9 is not in", "trixie-backports", "kernel/BASE", "apt.log"},
		},
		{
			name: "no apt-get",
			setup: func(t *testing.T, o *DebianOptions) {
				t.Setenv("PATH", t.TempDir())
			},
			wantLike: []string{"apt-get", "not found"},
		},
		{
			name: "no keyring",
			setup: func(t *testing.T, o *DebianOptions) {
				fakeApt(t)
				o.Keyring = filepath.Join(t.TempDir(), "none.gpg")
			},
			wantLike: []string{"keyring", "debian-archive-keyring"},
		},
		{
			name:     "bad major",
			setup:    func(t *testing.T, o *DebianOptions) { o.Major = "7" },
			wantLike: []string{`"7"`, "kernel/BASE"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			o := testOptions(t, &log)
			tc.setup(t, &o)
			s, err := Debian(context.Background(), o)
			if err == nil {
				t.Fatalf("Debian = %+v, want an error", s)
			}
			for _, w := range tc.wantLike {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseCandidate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"linux-source-7.3:\n  Installed: (none)\n  Candidate: 7.3.4-1~bpo13+1\n  Version table:\n", "7.3.4-1~bpo13+1"},
		{"linux-source-7.3:\n  Installed: (none)\n  Candidate: (none)\n", ""},
		{"", ""},
		{"N: Unable to locate package linux-source-9.9\n", ""},
	} {
		if got := parseCandidate(tc.in); got != tc.want {
			t.Errorf("parseCandidate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFindDeb(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"linux-source-7.3_7.3.4-1~bpo13+1_all.deb", "linux-source-7.3_1%3a7.3.5-1_all.deb", "linux-source-7.30_7.3.4-1~bpo13+1_all.deb"} {
		writeTree(t, dir, map[string]string{n: ""})
	}
	for _, tc := range []struct{ version, want string }{
		{"7.3.4-1~bpo13+1", "linux-source-7.3_7.3.4-1~bpo13+1_all.deb"},
		{"1:7.3.5-1", "linux-source-7.3_1%3a7.3.5-1_all.deb"},
		{"7.3.6-1", ""},
	} {
		got, err := findDeb(dir, "linux-source-7.3", tc.version)
		if tc.want == "" {
			if err == nil {
				t.Errorf("findDeb(%s) = %s, want error", tc.version, got)
			}
			continue
		}
		if err != nil || got != filepath.Join(dir, tc.want) {
			t.Errorf("findDeb(%s) = %s, %v; want %s", tc.version, got, err, tc.want)
		}
	}
}
