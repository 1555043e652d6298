// Package compat predicts, from two kernel images, whether a live update
// from the first into the second keeps every preserved session, and names
// what would be lost and why.
//
// A kernel image names the versions of the handover formats it speaks in
// its read-only data: the KHO tree ("kho-vN", KHO_FDT_COMPATIBLE), the LUO
// core ABI ("luo-vN", LUO_ABI_COMPATIBLE) and one compatible string per
// LUO file handler ("memfd-vN", MEMFD_LUO_FH_COMPATIBLE*). The rules of
// 7.3 are strict equality: the next kernel ignores a KHO tree whose
// compatible differs, refuses a LUO ABI it does not know, and fails the
// whole LUO deserialization (every /dev/liveupdate open returns EIO) when
// one preserved file names a handler it does not have. Which memfd format
// a kernel writes is its policy: memfd_luo.abi= on its command line,
// otherwise its default, read from the source it was built from when that
// is known.
package compat

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Profile is what one kernel image (with its command line) says about
// live update.
type Profile struct {
	// Image is the file the profile was read from.
	Image string `json:"image"`
	// KHO and LUO are the core ABI versions ("kho-v4", "luo-v5"); empty
	// when the kernel has no KHO or no LUO.
	KHO string `json:"kho,omitempty"`
	LUO string `json:"luo,omitempty"`
	// Memfd lists the memfd file handler formats the image names, oldest
	// first ("memfd-v2", "memfd-v3"): the formats it reads.
	Memfd []string `json:"memfd,omitempty"`
	// Subsystems are the other KHO users' versions ("memblock-v1",
	// "reserve-mem-v1"); a mismatch loses their data, not sessions.
	Subsystems []string `json:"subsystems,omitempty"`
	// HugetlbPool is the version of the hugetlb pool handover the image
	// names ("hugetlb-pool-v1", include/linux/kho/abi/hugetlb.h): the
	// series' kernels that preserve hugetlb memfds (in memfd-v3, under
	// memfd_luo.abi=v3) and size their boot pool by what they receive.
	HugetlbPool string `json:"hugetlb_pool,omitempty"`
	// Writes is the memfd format new preservations use, and WritesWhy
	// how that was decided.
	Writes    string `json:"writes,omitempty"`
	WritesWhy string `json:"writes_why,omitempty"`
}

// Policy is what decides the format a kernel writes.
type Policy struct {
	// Cmdline is the extra command line the kernel boots with (it may
	// hold memfd_luo.abi=).
	Cmdline string
	// SourceDefault is the default policy its source declares ("v2",
	// "v3"; kernels.SourceCaps "abi-default:"), "" if unknown.
	SourceDefault string
}

var (
	reKHO   = regexp.MustCompile(`^kho-v[0-9]+$`)
	reLUO   = regexp.MustCompile(`^luo-v[0-9]+$`)
	reMemfd = regexp.MustCompile(`^memfd-v[0-9]+$`)
	reSub   = regexp.MustCompile(`^(memblock|reserve-mem)-v[0-9]+$`)
	reHPool = regexp.MustCompile(`^hugetlb-pool-v[0-9]+$`)
	reABI   = regexp.MustCompile(`(?:^|\s)memfd_luo\.abi=(\S+)`)
)

// Inspect reads a kernel image: an uncompressed vmlinux, or a bzImage whose
// payload is compressed with gzip (in process), or zstd, xz or lz4 (with
// the matching tool, if installed).
func Inspect(ctx context.Context, path string, pol Policy) (*Profile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading kernel image: %w", err)
	}
	data, err := payload(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("kernel image %s: %w", path, err)
	}
	p := FromStrings(compatStrings(data), pol)
	p.Image = path
	return p, nil
}

// FromStrings builds a profile from the compatible strings found in an
// image.
func FromStrings(found []string, pol Policy) *Profile {
	p := &Profile{}
	var kho, luo, hpool []string
	for _, s := range found {
		switch {
		case reHPool.MatchString(s):
			hpool = append(hpool, s)
		case reKHO.MatchString(s):
			kho = append(kho, s)
		case reLUO.MatchString(s):
			luo = append(luo, s)
		case reMemfd.MatchString(s):
			p.Memfd = append(p.Memfd, s)
		case reSub.MatchString(s):
			p.Subsystems = append(p.Subsystems, s)
		}
	}
	// An image names one version of each core ABI; keep the newest if a
	// tree ever carries two.
	p.KHO, p.LUO, p.HugetlbPool = newest(kho), newest(luo), newest(hpool)
	sortVersions(p.Memfd)
	sort.Strings(p.Subsystems)
	p.Writes, p.WritesWhy = writes(p, pol)
	return p
}

func writes(p *Profile, pol Policy) (string, string) {
	if p.LUO == "" || len(p.Memfd) == 0 {
		return "", "no memfd live update handler in the image"
	}
	has := func(f string) bool {
		for _, m := range p.Memfd {
			if m == f {
				return true
			}
		}
		return false
	}
	refused := ""
	if m := reABI.FindAllStringSubmatch(pol.Cmdline, -1); m != nil {
		v := m[len(m)-1][1]
		if f := "memfd-" + v; has(f) && len(p.Memfd) > 1 {
			return f, "memfd_luo.abi=" + v + " on its command line"
		}
		if len(p.Memfd) == 1 {
			return p.Memfd[0], fmt.Sprintf("its only memfd handler; memfd_luo.abi=%s has no effect on it", v)
		}
		refused = fmt.Sprintf("; memfd_luo.abi=%s names no format it has, so it refuses the parameter", v)
	}
	if len(p.Memfd) == 1 {
		return p.Memfd[0], "its only memfd handler" + refused
	}
	if pol.SourceDefault != "" {
		if f := "memfd-" + pol.SourceDefault; has(f) {
			return f, "the default policy of its source (memfd_luo_abi = MEMFD_LUO_ABI_" + strings.ToUpper(pol.SourceDefault) + ")" + refused
		}
	}
	return p.Memfd[0], "assumed: the oldest memfd format it has (the default of stock kernels and of the series); its source was not available to confirm" + refused
}

// Loss is one thing a live update would lose.
type Loss struct {
	// What is lost: "every session", "the memblock-v1 data".
	What string `json:"what"`
	// Why, in terms of the two images.
	Why string `json:"why"`
	// Errno is what the first /dev/liveupdate open in the target returns,
	// when known ("EIO").
	Errno string `json:"errno,omitempty"`
}

// Prediction is the verdict for one ordered pair.
type Prediction struct {
	From *Profile `json:"from"`
	To   *Profile `json:"to"`
	// KeepsSessions: every session and every memfd in it survives.
	KeepsSessions bool   `json:"keeps_sessions"`
	Losses        []Loss `json:"losses,omitempty"`
	// Notes are facts that lose nothing (e.g. the target also reads a
	// newer format).
	Notes []string `json:"notes,omitempty"`
}

// Summary is one line: "keeps every session" or what is lost.
func (p Prediction) Summary() string {
	if p.KeepsSessions {
		return "keeps every session"
	}
	for _, l := range p.Losses {
		if l.What == "every session" {
			s := "loses every session"
			if l.Errno != "" {
				s += " (" + l.Errno + ")"
			}
			return s
		}
	}
	return "loses data"
}

// Predict applies the 7.3 rules to a live update from a into b.
func Predict(a, b *Profile) Prediction {
	pr := Prediction{From: a, To: b, KeepsSessions: true}
	lose := func(l Loss) {
		pr.Losses = append(pr.Losses, l)
		if l.What == "every session" {
			pr.KeepsSessions = false
		}
	}
	// The core ABIs must match, or the target drops the whole handover.
	core := ""
	switch {
	case a.KHO == "" || a.LUO == "":
		core = "the source kernel has no KHO or no LUO: nothing can be preserved"
	case b.KHO == "":
		core = "the target kernel has no KHO: it does not look for handed-over memory"
	case a.KHO != b.KHO:
		core = fmt.Sprintf("KHO tree %s, target reads %s: the target ignores the whole handover", a.KHO, b.KHO)
	case b.LUO == "":
		core = "the target kernel has no LUO"
	case a.LUO != b.LUO:
		core = fmt.Sprintf("LUO ABI %s, target reads %s: the target refuses the LUO state", a.LUO, b.LUO)
	}
	if core != "" {
		lose(Loss{What: "every session", Why: core})
		return pr
	}
	for _, s := range a.Subsystems {
		if !contains(b.Subsystems, s) {
			lose(Loss{What: "the " + s + " data", Why: fmt.Sprintf("the target has no %s (it has %s)", s, orNone(b.Subsystems))})
		}
	}
	if a.Writes != "" {
		if contains(b.Memfd, a.Writes) {
			pr.Notes = append(pr.Notes, fmt.Sprintf("memfds go over as %s (%s), which the target reads", a.Writes, a.WritesWhy))
		} else {
			lose(Loss{What: "every session", Errno: "EIO",
				Why: fmt.Sprintf("memfds are preserved as %s (%s) and the target has no %s handler (it reads %s): one such file fails the whole LUO deserialization", a.Writes, a.WritesWhy, a.Writes, orNone(b.Memfd))})
		}
	}
	for _, m := range a.Memfd {
		if m != a.Writes && !contains(b.Memfd, m) {
			pr.Notes = append(pr.Notes, fmt.Sprintf("%s is not read by the target: setting memfd_luo.abi=%s on the source would lose every session", m, strings.TrimPrefix(m, "memfd-")))
		}
	}
	hugetlbNotes(&pr, a, b, lose)
	return pr
}

// hugetlbNotes says what happens to hugetlb memfds. Only a source with the
// hugetlb pool handover preserves them, and only in memfd-v3: memfd-v2
// cannot describe one, so no target can ever read one as shmem.
func hugetlbNotes(pr *Prediction, a, b *Profile, lose func(Loss)) {
	note := func(f string, args ...any) { pr.Notes = append(pr.Notes, fmt.Sprintf(f, args...)) }
	if a.HugetlbPool == "" {
		note("hugetlb memfds cannot be preserved by the source (preserve: ENOENT)")
		return
	}
	readsV3 := contains(b.Memfd, "memfd-v3")
	if a.Writes != "memfd-v3" {
		target := "reads"
		if !readsV3 {
			target = "does not read: every session would be lost (EIO)"
		}
		note("hugetlb memfds are not preserved under the source's policy (preserve: ENOENT); they need memfd_luo.abi=v3, which this target %s", target)
		return
	}
	if !readsV3 {
		return // every session is lost already
	}
	if b.HugetlbPool == "" {
		lose(Loss{What: "hugetlb memfds", Errno: "EOPNOTSUPP",
			Why: "the target reads memfd-v3 but not its hugetlb flag: those files fail to be retrieved and their pages go back to the page allocator"})
		return
	}
	if b.HugetlbPool != a.HugetlbPool {
		note("the source hands over the count of its huge pages as %s, the target reads %s: its boot pool is not reduced, and retrieved pages join it as surplus pages", a.HugetlbPool, b.HugetlbPool)
		return
	}
	note("hugetlb memfds go over in memfd-v3; the target allocates its boot pool of huge pages (not gigantic) fewer by the pages handed over (%s)", b.HugetlbPool)
}

// known says whether s is a version string FromStrings sorts into a
// profile.
func known(s string) bool {
	for _, re := range []*regexp.Regexp{reKHO, reLUO, reMemfd, reSub, reHPool} {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// String renders a prediction for people.
func (p Prediction) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prediction: %s\n", p.Summary())
	for _, side := range []struct {
		name string
		p    *Profile
	}{{"from", p.From}, {"to", p.To}} {
		fmt.Fprintf(&b, "  %-4s %s: kho %s, luo %s, memfd %s, writes %s\n", side.name, side.p.Image,
			orNone([]string{side.p.KHO}), orNone([]string{side.p.LUO}), orNone(side.p.Memfd), orNone([]string{side.p.Writes}))
	}
	for _, l := range p.Losses {
		fmt.Fprintf(&b, "  LOST %s: %s\n", l.What, l.Why)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func orNone(l []string) string {
	var out []string
	for _, s := range l {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func version(s string) int {
	i := strings.LastIndex(s, "-v")
	n, _ := strconv.Atoi(s[i+2:])
	return n
}

func sortVersions(l []string) {
	sort.Slice(l, func(i, j int) bool { return version(l[i]) < version(l[j]) })
}

func newest(l []string) string {
	if len(l) == 0 {
		return ""
	}
	sortVersions(l)
	return l[len(l)-1]
}

// compatStrings returns the distinct NUL-terminated strings of data that
// look like a handover compatible string. A compatible is a string of its
// own (KHO, LUO) or an array inside a struct (a LUO file handler's
// compatible follows its ops pointer), so the byte before it is NUL or not
// printable; a mention in a message or in a list ("...,memfd-v3") is not.
func compatStrings(data []byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, prefix := range [][]byte{[]byte("kho-v"), []byte("luo-v"), []byte("memfd-v"), []byte("memblock-v"), []byte("reserve-mem-v"), []byte("hugetlb-pool-v")} {
		for off := 0; ; {
			i := bytes.Index(data[off:], prefix)
			if i < 0 {
				break
			}
			start := off + i
			off = start + 1
			if start > 0 && data[start-1] >= 0x20 && data[start-1] < 0x7f {
				continue
			}
			end := bytes.IndexByte(data[start:], 0)
			if end < 0 || end > 32 {
				continue
			}
			s := string(data[start : start+end])
			if !seen[s] && known(s) {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// payload returns the kernel proper: the image itself when it is an ELF
// vmlinux, the decompressed payload of a bzImage otherwise.
func payload(ctx context.Context, raw []byte) ([]byte, error) {
	if bytes.HasPrefix(raw, []byte(elf.ELFMAG)) {
		return raw, nil
	}
	if len(raw) < 0x260 || string(raw[0x202:0x206]) != "HdrS" {
		return nil, errors.New("neither an ELF vmlinux nor an x86 bzImage (no HdrS boot header)")
	}
	type codec struct {
		name  string
		magic []byte
		tool  []string
	}
	codecs := []codec{
		{"gzip", []byte{0x1f, 0x8b, 0x08}, nil},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dcq"}},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, []string{"xz", "-dcq"}},
		{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}, []string{"lz4", "-dcq"}},
	}
	var tried []string
	for _, c := range codecs {
		for off := 0; ; {
			i := bytes.Index(raw[off:], c.magic)
			if i < 0 {
				break
			}
			at := off + i
			off = at + 1
			var out []byte
			var err error
			if c.tool == nil {
				out, err = gunzip(raw[at:])
			} else {
				if _, lerr := exec.LookPath(c.tool[0]); lerr != nil {
					tried = append(tried, fmt.Sprintf("%s payload at %#x, but %s is not installed", c.name, at, c.tool[0]))
					break
				}
				cmd := exec.CommandContext(ctx, c.tool[0], c.tool[1:]...)
				cmd.Stdin = bytes.NewReader(raw[at:])
				out, err = cmd.Output()
				if len(out) > 0 && bytes.HasPrefix(out, []byte(elf.ELFMAG)) {
					err = nil // trailing data after the stream
				}
			}
			if err == nil || len(out) > 0 {
				if bytes.HasPrefix(out, []byte(elf.ELFMAG)) {
					return out, nil
				}
			}
		}
	}
	if len(tried) > 0 {
		return nil, fmt.Errorf("cannot decompress the payload: %s", strings.Join(tried, "; "))
	}
	return nil, errors.New("no gzip, zstd, xz or lz4 payload holding an ELF kernel found")
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	out, err := io.ReadAll(zr)
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) {
		return out, nil // a bzImage pads or truncates the stream's trailer
	}
	return out, err
}
