package scenario

import (
	"fmt"
	"strings"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Seal bits (include/uapi/linux/fcntl.h).
const (
	SealSeal        = 0x1
	SealShrink      = 0x2
	SealGrow        = 0x4
	SealWrite       = 0x8
	SealFutureWrite = 0x10
	SealExec        = 0x20
)

// Capabilities a kernel may declare (agent.DetectCaps) that change what
// the catalogue expects.
const (
	// CapSparse: preservation keeps holes (no hole filling).
	CapSparse = "sparse"
	// CapNoexecFix: an MFD_NOEXEC_SEAL memfd comes back with its mode
	// and without implied write seals.
	CapNoexecFix = "noexec-fix"
)

// Citations for expectations, from the Linux 7.3 tree.
const (
	citeUAPIErrors  = "include/uapi/linux/liveupdate.h: E2BIG/EINVAL/ENOENT error conventions"
	citePreserve    = "kernel/liveupdate/luo_file.c luo_preserve_file(): -EEXIST token used, -EBUSY fd preserved by another session, -ENOENT no compatible handler"
	citeRetrieveFD  = "kernel/liveupdate/luo_file.c luo_retrieve_file(): -ENOENT if no file with the matching token"
	citeSessionName = "kernel/liveupdate/luo_session.c luo_session_create(): name length 1..LIVEUPDATE_SESSION_NAME_LENGTH-1, else -EINVAL; duplicate -EEXIST"
	citeSessionType = "kernel/liveupdate/luo_session.c luo_ioctl_type_valid(): FINISH/RETRIEVE_FD only on incoming, PRESERVE_FD only on outgoing sessions, else -EINVAL"
	citeExclusive   = "kernel/liveupdate/luo_core.c luo_open(): /dev/liveupdate is exclusive, a second open fails with -EBUSY"
	citeRetrieveSes = "kernel/liveupdate/luo_session.c luo_session_retrieve(): -ENOENT unknown name, -EINVAL already retrieved"
	citeFinish      = "kernel/liveupdate/luo_file.c luo_file_finish(): an empty file set finishes with 0"
	citeNoexecBug   = "stock 7.3 bug: an MFD_NOEXEC_SEAL memfd is restored with mode 0777 and seals 0x3e (write-sealed); see kernel/README.md"
	citeReuse       = "kernel/liveupdate/luo_file.c: a retrieved file stays in luo_preserved_files until its session is finished, re-preserving gives -EBUSY"
)

func single(name, desc string, files ...plan.File) *Scenario {
	s := &Scenario{Name: name, Description: desc, Files: files}
	ss := Session{Name: "s0", TokenBase: 0x1000}
	for _, f := range files {
		ss.Files = append(ss.Files, f.Name)
	}
	s.Sessions = []Session{ss}
	return s
}

func u32(v uint32) *uint32 { return &v }

// prev names a capability of the kernel that preserved the files (the
// previous stage's kernel), as the retrieving agent sees it.
func prev(c string) string { return "prev:" + c }

func tagged(s *Scenario, tags ...string) *Scenario {
	s.Tags = append(s.Tags, tags...)
	return s
}

// Default returns the built-in catalogue. Tags: "default" is what `make
// test` runs; "all" selects everything; "large" needs 3 GiB guests and a
// minute of TCG time each.
func Default() Catalogue {
	c := Catalogue{
		tagged(single("basic-64m", "64 MiB memfd filled with a seeded pattern, position mid-file, one kexec",
			plan.File{Name: "m0", Flags: plan.MFDAllowSeal, Size: 64 * MiB, Seed: 1, Pos: 32*MiB + 123}), "default", "smoke"),
		tagged(selfcheck(), "default", "smoke"),
		tagged(single("empty", "zero-length memfd",
			plan.File{Name: "e0", Flags: plan.MFDAllowSeal, Size: 0, Seed: 3}), "default"),
		tagged(single("one-byte", "one byte of data, position at EOF",
			plan.File{Name: "b0", Flags: plan.MFDAllowSeal, Size: 1, Seed: 4, Pos: 1}), "default"),
		tagged(single("unaligned-size", "size not a multiple of the page size",
			plan.File{Name: "u0", Flags: plan.MFDAllowSeal, Size: 3*MiB + 4097, Seed: 5, Pos: 4097}), "default"),
		tagged(fallocated(), "default"),
		tagged(sparse(), "default"),
		tagged(seals(), "default"),
		tagged(noexec(), "default"),
		tagged(manyFiles(), "default"),
		tagged(manySessions(), "default"),
		tagged(small512(), "default"),
		tagged(thp(), "default"),
		tagged(mmapAfterPreserve(), "default"),
		tagged(holeWriteAfterPreserve(), "default"),
		tagged(chain(), "default"),
		tagged(hugetlb2M(), "default", "hugetlb", TagSolo),
		tagged(hugetlb2MSparse(), "default", "hugetlb", TagSolo),
		tagged(hugetlbMixed(), "default", "hugetlb", TagSolo),
		tagged(hugetlb1G(), "hugetlb", "large", TagSolo),
		tagged(hugetlbChain(), "default", "hugetlb", TagSolo),
		tagged(hugetlbPoolSmall(), "default", "hugetlb", TagSolo),
		tagged(hugetlbCgroup(), "default", "hugetlb", TagSolo),
		tagged(hugetlbSurplus(), "default", "hugetlb", TagSolo),
		tagged(hugetlbScratch(), "default", "hugetlb", TagSolo),
		tagged(badInput(), "default"),
		tagged(lifecycle(), "default"),
		tagged(modeKept(), "default"),
		tagged(abiMixed(), "default"),
		tagged(kunit(), "default"),
	}
	c = append(c, corruptions()...)
	c = append(c, hugetlbCorruptions()...)
	c = append(c, tagged(frozenAbort(), "default", "corruption"))
	c = append(c, Catalogue{
		tagged(swapZram(), "default", "swap", TagSolo),
		tagged(racePreserve(), "default", "race"),
		tagged(raceFreeze(), "default", "race", TagSolo),
	}...)
	c = append(c, Catalogue{
		tagged(dense1G(), "large"),
		tagged(strict(noexec(), "noexec-seal-strict"), "stock-bugs"),
		tagged(strict(sparse(), "sparse-1g-strict"), "stock-bugs"),
		tagged(measure("measure-dense-1g", "1 GiB written in 4 KiB pages", 1<<30, nil, ""), "measure", TagSolo),
		tagged(measure("measure-thp-1g", "1 GiB written through shmem THP", 1<<30, nil, "transparent_hugepage_shmem=always"), "measure", TagSolo),
		tagged(measure("measure-sparse-4g", "4 GiB memfd, 64 MiB written in 16 places", 4<<30, spread(4<<30, 16, 4*MiB), ""), "measure", TagSolo),
	}...)
	return c
}

// corruption is one way the test hook corrupts a file's handover data
// (patch 16, CONFIG_MEMFD_LUO_TEST_HOOK), the format it applies to, what
// the next kernel's retrieve of that file must return, and whether all of
// the file's memory can come back.
type corruption struct {
	class  string
	abi    string // "v2" or "v3"
	errno  string
	leaks  string // why memory cannot come back, "" if it must
	detail string
}

// corruptionClasses are the classes the corruption scenarios run. With
// memfd-v2, a record naming a wrong pfn loses the one folio it named
// before: within the one page the leak check allows.
var corruptionClasses = []corruption{
	// The agent names errno 95 ENOTSUP (EOPNOTSUPP is the same value).
	{class: "seals", abi: "v2", errno: "ENOTSUP", detail: "a seal the kernel does not know"},
	{class: "size", abi: "v2", errno: "EINVAL", detail: "i_size beyond MAX_LFS_FILESIZE"},
	{class: "count", abi: "v2", errno: "EINVAL", detail: "the header counts one folio more than the records hold"},
	{class: "count-huge", abi: "v2", errno: "EINVAL", detail: "the header counts 2^62 folios"},
	{class: "area", abi: "v2", errno: "EINVAL", detail: "the record area is not preserved memory",
		leaks: "the folios are named only by the unreachable records"},
	{class: "pfn-unpreserved", abi: "v2", errno: "EINVAL", detail: "the first record names memory that was not preserved"},
	{class: "pfn-invalid", abi: "v2", errno: "EINVAL", detail: "the first record names a pfn beyond any memory"},
	{class: "pfn-duplicate", abi: "v2", errno: "EINVAL", detail: "the second record names the first record's folio"},
	{class: "pfn-ser", abi: "v2", errno: "EINVAL", detail: "the first record names the file's own serialization page"},
	{class: "index-order", abi: "v2", errno: "EINVAL", detail: "the first two records are out of index order"},
	{class: "index-eof", abi: "v2", errno: "EINVAL", detail: "the first record's index is at i_size"},
	{class: "flags", abi: "v2", errno: "EINVAL", detail: "an unknown folio flag"},
	{class: "run-huge", abi: "v3", errno: "EINVAL", detail: "a memfd-v3 run of 2^32-1 contiguous folios",
		leaks: "if the file's folios were scattered, the run now names other pfns than the rest of them"},
	{class: "count", abi: "v3", errno: "EINVAL", detail: "the memfd-v3 header counts one folio more"},
	{class: "flags", abi: "v3", errno: "EINVAL", detail: "an unknown folio flag in a memfd-v3 run"},
	{class: "index-eof", abi: "v3", errno: "EINVAL", detail: "a memfd-v3 run starting at i_size"},
}

const citeCorrupt = "kernel/README.md, patches 13-16: corrupt handover data fails that file with an errno, frees what it names, and leaves the other files alone"

// corruptions are end-to-end checks of hostile handover data: the test
// hook corrupts one file's data at freeze; in the next kernel, that file's
// retrieve fails with the class's errno while a file of the same session
// and one of another session verify byte for byte, and MemTotal grows by
// what a clean twin of the victim gave back, to the page. They need the
// hook in every kernel (the debug flavour) and are skipped elsewhere; the
// debug flavour's panic_on_warn=1 turns any WARN into a failed run.
func corruptions() Catalogue {
	var c Catalogue
	for _, k := range corruptionClasses {
		tags := []string{"default", "corruption"}
		if k.class == "run-huge" {
			// The stretched run names contiguous pfns after the
			// victim's first folio, and KHO cannot tell whose
			// preserved block a pfn is. What sits there depends on
			// physical placement: a file of another scenario
			// batched into the same VM (seen 2026-11-28, hence a VM
			// of its own), and, with the 24-patch series, LUO's own
			// file-set block, which the corrupt file took; LUO's
			// finish then warned in kho_restore_free() (panic with
			// panic_on_warn). That is the known limitation of
			// kernel/README.md ("Not done yet"), not fixed: the
			// scenario runs on demand (tag known-issue), not in the
			// default catalogue, until handover data can name its
			// owner.
			tags = []string{"known-issue", "corruption", TagSolo}
		}
		c = append(c, tagged(corruptionScenario(k), tags...))
	}
	return c
}

func corruptionScenario(k corruption) *Scenario {
	const size = 4 * MiB
	f := func(n string, seed uint64, sz int64) plan.File {
		return plan.File{Name: n, Flags: plan.MFDAllowSeal, Size: sz, Seed: seed, Pos: 7}
	}
	// memfd-v2 spends the same record pages on the victim and its twin
	// (16 bytes per folio): one page of slack. A memfd-v3 stream's
	// length follows the physical layout, which differs between two
	// files: allow a few record pages more.
	slack := int64(4)
	if k.abi == "v3" {
		slack = 16
	}
	sameAsTwin := []plan.Check{
		{Key: "MemTotal_delta", Op: ">=", Ref: "@twin.MemTotal_delta", Value: -slack},
		{Key: "MemTotal_delta", Op: "<=", Ref: "@twin.MemTotal_delta", Value: slack},
	}
	if k.leaks != "" {
		sameAsTwin = nil
	}
	desc := fmt.Sprintf("corrupt handover data (%s, memfd-%s: %s): that file fails with %s", k.class, k.abi, k.detail, k.errno)
	if k.leaks == "" {
		desc += " and gives all its memory back (MemTotal, to the page)"
	} else {
		desc += "; its folios stay reserved (" + k.leaks + ")"
	}
	desc += "; the other files of its session and of another session verify"
	return &Scenario{
		Name:        "corrupt-" + k.abi + "-" + k.class,
		Description: desc,
		// One VM per format: the scenarios of a format share a boot
		// chain, each with its own victim.
		Cmdline:     "memfd_luo.abi=" + k.abi,
		NeedsConfig: []string{"CONFIG_MEMFD_LUO_TEST_HOOK"},
		Files:       []plan.File{f("v", 1001, size), f("b", 1002, MiB), f("o", 1003, MiB), f("t", 1004, size)},
		Stages: corruptionStages(k, corruptionChecks{
			twin:   []plan.Check{{Key: "MemTotal_delta", Op: ">=", Value: size >> 10}},
			victim: sameAsTwin,
		}),
	}
}

// corruptionChecks are what a corruption scenario checks beyond the
// errno: at the meminfo steps after the twin's and the victim's
// retrieve, and at the verify of the twin; cite explains the first two.
type corruptionChecks struct {
	twin, victim, twinVerify []plan.Check
	cite                     string
}

// corruptionStages are the two stages of every corruption scenario, on
// files v (the victim), b (in v's session), o (in another session) and t
// (v's clean twin, in a session of its own): the hook corrupts v's
// handover data at freeze; in the next kernel b and o verify, t comes
// back, v's retrieve fails with k's errno (twice: the error is sticky),
// t verifies, and finishing the sessions gives back LUO's own page per
// session (3 sessions: 12 kB) and nothing of the victim, because a
// failed retrieve already freed what it could.
func corruptionStages(k corruption, c corruptionChecks) []plan.Stage {
	return []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpCreateSession, Session: "s0"},
			{Op: plan.OpCreateSession, Session: "s1"},
			{Op: plan.OpCreateSession, Session: "tw"},
			{Op: plan.OpCreateMemfd, File: "v"},
			{Op: plan.OpCreateMemfd, File: "b"},
			{Op: plan.OpCreateMemfd, File: "o"},
			{Op: plan.OpCreateMemfd, File: "t"},
			{Op: plan.OpPreserve, Session: "s0", File: "v", Token: 1},
			{Op: plan.OpPreserve, Session: "s0", File: "b", Token: 2},
			{Op: plan.OpPreserve, Session: "s1", File: "o", Token: 1},
			{Op: plan.OpPreserve, Session: "tw", File: "t", Token: 1},
			{Op: plan.OpCorruptHandover, File: "v", Data: k.class},
			{Op: plan.OpKexec},
		}},
		{Steps: []plan.Step{
			{Op: plan.OpRetrieveSession, Session: "s0"},
			{Op: plan.OpRetrieveSession, Session: "s1"},
			{Op: plan.OpRetrieveSession, Session: "tw"},
			{Op: plan.OpRetrieve, Session: "s0", Token: 2, File: "b"},
			{Op: plan.OpVerify, File: "b"},
			{Op: plan.OpRetrieve, Session: "s1", Token: 1, File: "o"},
			{Op: plan.OpVerify, File: "o"},
			{Op: plan.OpMeminfo, Label: "base"},
			{Op: plan.OpRetrieve, Session: "tw", Token: 1, File: "t"},
			{Op: plan.OpMeminfo, Label: "twin", Checks: c.twin, Cite: c.cite},
			{Op: plan.OpRetrieve, Session: "s0", Token: 1, Expect: k.errno, Cite: citeCorrupt},
			{Op: plan.OpMeminfo, Label: "victim", Checks: c.victim, Cite: c.cite},
			{Op: plan.OpRetrieve, Session: "s0", Token: 1, Expect: k.errno, Cite: "luo_file.c: a failed retrieve's error is sticky"},
			{Op: plan.OpVerify, File: "t", Checks: c.twinVerify},
			{Op: plan.OpFinish, Session: "s0"},
			{Op: plan.OpFinish, Session: "s1"},
			{Op: plan.OpFinish, Session: "tw"},
			{Op: plan.OpMeminfo, Label: "finished", Checks: []plan.Check{
				{Key: "MemTotal_delta", Op: ">=", Value: 0},
				{Key: "MemTotal_delta", Op: "<=", Value: 16},
			}},
		}},
	}
}

// kunit boots once and judges the kernel's built-in KUnit suites, which
// run before init and print KTAP on the console. The agent only reports
// that the kernel reached user space.
func kunit() *Scenario {
	return &Scenario{
		Name: "kunit",
		Description: "the kernel's built-in KUnit suites (run at boot, KTAP on the console), each case a test; " +
			"needs CONFIG_KUNIT=y (the debug flavour), skipped otherwise",
		KUnit: true,
		// The debug flavour boots with kunit.autorun=0; the last
		// value on the command line wins.
		Cmdline: "kunit.autorun=1",
		Stages:  []plan.Stage{{Steps: []plan.Step{{Op: plan.OpMeminfo, Label: "booted"}}}},
	}
}

func selfcheck() *Scenario {
	s := single("selfcheck-corrupt", "verifier self-check: flip one byte after retrieve, verification must report the page",
		plan.File{Name: "m0", Flags: plan.MFDAllowSeal, Size: 4 * MiB, Seed: 2, Pos: 17})
	s.Corrupt = true
	return s
}

func fallocated() *Scenario {
	return single("fallocated-not-written", "16 MiB memfd, 8 MiB fallocated but never written, 1 MiB written after it",
		plan.File{Name: "f0", Flags: plan.MFDAllowSeal, Size: 16 * MiB, Seed: 6,
			Fallocated: []plan.Extent{{Off: 0, Len: 8 * MiB}},
			Extents:    []plan.Extent{{Off: 12 * MiB, Len: MiB}}})
}

// sparse: 1 GiB file, 4 MiB written in four places. A kernel that keeps
// holes must preserve 4 MiB; stock 7.3 fills every hole at preserve.
func sparse() *Scenario {
	const size = 1 << 30
	f := plan.File{Name: "sp0", Flags: plan.MFDAllowSeal, Size: size, Seed: 7, Pos: 5,
		Extents: []plan.Extent{{Off: 0, Len: MiB}, {Off: 256 * MiB, Len: MiB}, {Off: 512*MiB + 100, Len: MiB}, {Off: size - MiB, Len: MiB}}}
	s := single("sparse-1g", "1 GiB memfd with 4 MiB written: holes stay holes (or, on stock 7.3, are filled at preserve)", f)
	s.MemoryMB = 3072
	written := int64(4*MiB + 4096) // the third extent is unaligned: it touches 257 pages
	s.afterPreserve = []plan.Check{
		{Key: "blocks_after", Op: "==", Ref: "blocks_before", When: CapSparse},
		{Key: "blocks_after", Op: "==", Value: size / 512, When: "!" + CapSparse},
	}
	// Whether the holes survive is up to the kernel that preserved the
	// file: the retrieving kernel sees its capabilities as "prev:".
	s.verifyChecks = map[string][]plan.Check{"sp0": {
		{Key: "data_bytes", Op: "==", Value: written, When: prev(CapSparse)},
		{Key: "blocks", Op: "==", Value: written / 512, When: prev(CapSparse)},
		{Key: "data_bytes", Op: "==", Value: size, When: "!" + prev(CapSparse)},
		{Key: "blocks", Op: "==", Value: size / 512, When: "!" + prev(CapSparse)},
	}}
	return s
}

// seals: one memfd per seal 7.3 preserves, and a combination. Adding
// F_SEAL_EXEC to a memfd whose mode has exec bits implies the write seals
// (mm/memfd.c), so its expected set is 0x3e.
func seals() *Scenario {
	cases := []struct {
		name        string
		seals, want uint32
	}{
		{"seal-seal", SealSeal, SealSeal},
		{"seal-shrink", SealShrink, SealShrink},
		{"seal-grow", SealGrow, SealGrow},
		{"seal-write", SealWrite, SealWrite},
		{"seal-future-write", SealFutureWrite, SealFutureWrite},
		{"seal-exec", SealExec, SealExec | SealShrink | SealGrow | SealWrite | SealFutureWrite},
		{"seal-combo", SealShrink | SealGrow | SealWrite | SealSeal, SealShrink | SealGrow | SealWrite | SealSeal},
	}
	var files []plan.File
	for i, c := range cases {
		files = append(files, plan.File{Name: c.name, Flags: plan.MFDAllowSeal, Size: MiB + int64(i)*4096, Seed: 100 + uint64(i),
			Seals: c.seals, ExpectSeals: u32(c.want), Pos: int64(i)})
	}
	files = append(files, plan.File{Name: "no-sealing", Flags: 0, Size: MiB, Seed: 99, ExpectSeals: u32(SealSeal)})
	return single("seals", "every seal stock 7.3 preserves, one memfd each, plus a combination and a memfd created without MFD_ALLOW_SEALING", files...)
}

// noexec: stock 7.3 brings an MFD_NOEXEC_SEAL memfd back as mode 0777,
// seals 0x3e, and pwrite fails. The scenario expects the correct state on
// kernels declaring noexec-fix and the documented failure elsewhere.
//
// nx1 adds F_SEAL_WRITE to such a memfd (seals 0x28): a rule that only
// looks for the absence of write seals still brings it back as mode 0777
// with seals 0x3e (review 1, item 3); the series' rule (F_SEAL_EXEC
// without all four implied seals) keeps mode 0666 and seals 0x28.
func noexec() *Scenario {
	s := single("noexec-seal", "MFD_NOEXEC_SEAL memfds keep mode 0666 and their seals: F_SEAL_EXEC alone stays writable, F_SEAL_EXEC|F_SEAL_WRITE gains nothing (stock 7.3: mode 0777, seals 0x3e)",
		plan.File{Name: "nx0", Flags: plan.MFDNoexecSeal, Size: 2 * MiB, Seed: 8,
			ExpectMode: u32(0o666), ExpectSeals: u32(SealExec), ExpectWritable: true},
		plan.File{Name: "nx1", Flags: plan.MFDNoexecSeal, Size: MiB, Seed: 9, Seals: SealWrite,
			ExpectMode: u32(0o666), ExpectSeals: u32(SealExec | SealWrite)})
	fixed := stepExpect{expect: "mismatch", byCap: []plan.CapExpect{{Cap: CapNoexecFix, Expect: "ok"}}, cite: citeNoexecBug}
	s.verifyExpect = map[string]stepExpect{"nx0": fixed, "nx1": fixed}
	return s
}

func manyFiles() *Scenario {
	return single("several-memfds", "four memfds of different shapes in one session",
		plan.File{Name: "a", Flags: plan.MFDAllowSeal, Size: MiB, Seed: 11, Pos: 100},
		plan.File{Name: "b", Flags: plan.MFDAllowSeal, Size: 3*MiB + 7, Seed: 12},
		plan.File{Name: "c", Flags: plan.MFDAllowSeal, Size: 0, Seed: 13},
		plan.File{Name: "d", Flags: plan.MFDAllowSeal, Size: 8 * MiB, Seed: 14, Write: plan.WriteMmap, Pos: 8 * MiB})
}

func manySessions() *Scenario {
	s := &Scenario{Name: "several-sessions", Description: "three sessions of two memfds each"}
	for i := 0; i < 3; i++ {
		ss := Session{Name: fmt.Sprintf("vm%d", i), TokenBase: uint64(i+1) << 16}
		for j := 0; j < 2; j++ {
			name := fmt.Sprintf("vm%d-m%d", i, j)
			s.Files = append(s.Files, plan.File{Name: name, Flags: plan.MFDAllowSeal, Size: int64(j+1) * MiB, Seed: uint64(20 + 2*i + j), Pos: int64(i)})
			ss.Files = append(ss.Files, name)
		}
		s.Sessions = append(s.Sessions, ss)
	}
	return s
}

func small512() *Scenario {
	s := &Scenario{Name: "512-small-memfds", Description: "512 memfds of 8 KiB in four sessions"}
	for i := 0; i < 4; i++ {
		ss := Session{Name: fmt.Sprintf("many%d", i), TokenBase: uint64(i+1) << 20}
		for j := 0; j < 128; j++ {
			name := fmt.Sprintf("s%d-%03d", i, j)
			s.Files = append(s.Files, plan.File{Name: name, Flags: plan.MFDAllowSeal, Size: 8192, Seed: uint64(1000 + i*128 + j), Pos: int64(j)})
			ss.Files = append(ss.Files, name)
		}
		s.Sessions = append(s.Sessions, ss)
	}
	return s
}

func thp() *Scenario {
	s := single("thp-shmem", "64 MiB memfd backed by shmem THP (transparent_hugepage_shmem=always): large folios survive",
		plan.File{Name: "t0", Flags: plan.MFDAllowSeal, Size: 64 * MiB, Seed: 30, Write: plan.WriteMmap, Pos: 2 * MiB})
	s.Cmdline = "transparent_hugepage_shmem=always"
	s.meminfoChecks = map[string][]plan.Check{
		"populated": {{Key: "ShmemHugePages", Op: ">", Value: 0}},
		"retrieved": {{Key: "ShmemHugePages", Op: ">", Value: 0}},
	}
	return s
}

func mmapAfterPreserve() *Scenario {
	s := single("mmap-write-after-preserve", "writes through a shared mapping after preserve and before kexec land in the next kernel",
		plan.File{Name: "w0", Flags: plan.MFDAllowSeal, Size: 16 * MiB, Seed: 40, Write: plan.WriteMmap})
	s.afterPreserveSteps = []plan.Step{{Op: plan.OpWrite, File: "w0", Extent: plan.Extent{Off: 4*MiB + 100, Len: MiB}, Seed: 41}}
	return s
}

// holeWriteAfterPreserve writes into a hole after preserve. Stock 7.3 has
// no holes left by then; a sparse kernel must catch the new folio up at
// freeze.
func holeWriteAfterPreserve() *Scenario {
	s := single("hole-write-after-preserve", "a hole filled through mmap after preserve, before kexec, is in the next kernel",
		plan.File{Name: "h0", Flags: plan.MFDAllowSeal, Size: 64 * MiB, Seed: 42, Write: plan.WriteMmap,
			Extents: []plan.Extent{{Off: 0, Len: MiB}}})
	s.afterPreserveSteps = []plan.Step{{Op: plan.OpWrite, File: "h0", Extent: plan.Extent{Off: 32 * MiB, Len: 2 * MiB}, Seed: 43}}
	return s
}

func chain() *Scenario {
	s := single("chain-3-hops", "three kexecs in a row: retrieve, verify, finish and preserve again at every hop",
		plan.File{Name: "c0", Flags: plan.MFDAllowSeal, Size: 8 * MiB, Seed: 50, Pos: 4096},
		plan.File{Name: "c1", Flags: plan.MFDAllowSeal, Size: 2*MiB + 1, Seed: 51, Seals: SealGrow, ExpectSeals: u32(SealGrow)})
	s.Hops = 3
	return s
}

func badInput() *Scenario {
	name63 := strings.Repeat("a", 63)
	name64 := strings.Repeat("b", 64)
	m := func(n string) plan.File {
		return plan.File{Name: n, Flags: plan.MFDAllowSeal, Size: 64 << 10, Seed: 70}
	}
	return &Scenario{
		Name:        "bad-input",
		Description: "non-memfd files, duplicate tokens and files, a second opener, malformed ioctls, session name limits",
		Files:       []plan.File{m("x0"), m("x1")},
		Stages: []plan.Stage{{Steps: []plan.Step{
			{Op: plan.OpRetrieveSession, Session: "nonexistent", Expect: "ENOENT", Cite: citeRetrieveSes},
			{Op: plan.OpCreateSession, Session: "bad"},
			{Op: plan.OpPreserveOther, Session: "bad", Other: "pipe", Token: 1, Expect: "ENOENT", Cite: citePreserve},
			{Op: plan.OpPreserveOther, Session: "bad", Other: "socket", Token: 2, Expect: "ENOENT", Cite: citePreserve},
			{Op: plan.OpPreserveOther, Session: "bad", Other: "tmpfs", Token: 3, Expect: "ENOENT", Cite: citePreserve},
			{Op: plan.OpCreateMemfd, File: "x0"},
			{Op: plan.OpCreateMemfd, File: "x1"},
			{Op: plan.OpPreserve, Session: "bad", File: "x0", Token: 10},
			{Op: plan.OpPreserve, Session: "bad", File: "x1", Token: 10, Expect: "EEXIST", Cite: citePreserve},
			{Op: plan.OpPreserve, Session: "bad", File: "x0", Token: 11, Expect: "EBUSY", Cite: citePreserve},
			{Op: plan.OpCreateSession, Session: "bad2"},
			{Op: plan.OpPreserve, Session: "bad2", File: "x0", Token: 12, Expect: "EBUSY", Cite: citePreserve},
			{Op: plan.OpCreateSession, Session: "bad", Expect: "EEXIST", Cite: citeSessionName},
			{Op: plan.OpOpenDevice, Expect: "EBUSY", Cite: citeExclusive},
			{Op: plan.OpRawIoctl, Raw: &plan.RawIoctl{Cmd: "create_session", Size: 4, Name: "short", OnDevice: true}, Expect: "EINVAL", Cite: citeUAPIErrors},
			{Op: plan.OpRawIoctl, Raw: &plan.RawIoctl{Cmd: "create_session", Size: 80, Tail: 1, Name: "tail", OnDevice: true}, Expect: "E2BIG", Cite: citeUAPIErrors},
			{Op: plan.OpRawIoctl, Raw: &plan.RawIoctl{Cmd: "create_session", Size: 80, Name: "zero-tail", OnDevice: true}, Cite: citeUAPIErrors},
			{Op: plan.OpRawIoctl, Session: "bad", Raw: &plan.RawIoctl{Cmd: "finish"}, Expect: "EINVAL", Cite: citeSessionType},
			{Op: plan.OpRawIoctl, Session: "bad", Raw: &plan.RawIoctl{Cmd: "get_name", Reserved: 1}, Expect: "EINVAL", Cite: citeUAPIErrors},
			{Op: plan.OpRawIoctl, Session: "bad", Raw: &plan.RawIoctl{Cmd: "preserve_fd", Size: 8}, File: "x1", Token: 13, Expect: "EINVAL", Cite: citeUAPIErrors},
			{Op: plan.OpRawIoctl, Raw: &plan.RawIoctl{Cmd: "create_session", Name: name63, OnDevice: true}, Cite: citeSessionName},
			{Op: plan.OpRawIoctl, Raw: &plan.RawIoctl{Cmd: "create_session", Name: name64, OnDevice: true}, Expect: "EINVAL", Cite: citeSessionName},
			{Op: plan.OpRawIoctl, Raw: &plan.RawIoctl{Cmd: "create_session", Name: "", OnDevice: true}, Expect: "EINVAL", Cite: citeSessionName},
			{Op: plan.OpGetName, Session: "bad"},
		}}},
	}
}

func lifecycle() *Scenario {
	m := func(n string, seed uint64) plan.File {
		return plan.File{Name: n, Flags: plan.MFDAllowSeal, Size: 256 << 10, Seed: seed, Pos: 3}
	}
	return &Scenario{
		Name: "lifecycle",
		Description: "wrong token, unknown and closed sessions, finish twice, a session retrieved but not finished " +
			"(its file cannot be re-preserved, and it is gone at the next hop)",
		Files: []plan.File{m("k0", 80), m("c0", 81), m("u0", 82)},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpCreateSession, Session: "keep"},
				{Op: plan.OpCreateMemfd, File: "k0"},
				{Op: plan.OpPreserve, Session: "keep", File: "k0", Token: 1},
				{Op: plan.OpCreateSession, Session: "closed"},
				{Op: plan.OpCreateMemfd, File: "c0"},
				{Op: plan.OpPreserve, Session: "closed", File: "c0", Token: 2},
				{Op: plan.OpCloseSession, Session: "closed"},
				{Op: plan.OpCreateSession, Session: "unfinished"},
				{Op: plan.OpCreateMemfd, File: "u0"},
				{Op: plan.OpPreserve, Session: "unfinished", File: "u0", Token: 3},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "closed", Expect: "ENOENT", Cite: citeRetrieveSes},
				{Op: plan.OpRetrieveSession, Session: "keep"},
				{Op: plan.OpRetrieveSession, Session: "keep", Expect: "EINVAL", Cite: citeRetrieveSes},
				{Op: plan.OpRetrieve, Session: "keep", Token: 99, Expect: "ENOENT", Cite: citeRetrieveFD},
				{Op: plan.OpRetrieve, Session: "keep", Token: 1, File: "k0"},
				{Op: plan.OpVerify, File: "k0"},
				{Op: plan.OpRawIoctl, Session: "keep", Raw: &plan.RawIoctl{Cmd: "preserve_fd"}, File: "k0", Token: 7, Expect: "EINVAL", Cite: citeSessionType},
				{Op: plan.OpFinish, Session: "keep"},
				{Op: plan.OpFinish, Session: "keep", Cite: citeFinish},
				{Op: plan.OpRetrieve, Session: "keep", Token: 1, Expect: "ENOENT", Cite: citeRetrieveFD},
				{Op: plan.OpRetrieveSession, Session: "unfinished"},
				{Op: plan.OpRetrieve, Session: "unfinished", Token: 3, File: "u0"},
				{Op: plan.OpVerify, File: "u0"},
				{Op: plan.OpCreateSession, Session: "next"},
				{Op: plan.OpPreserve, Session: "next", File: "u0", Token: 5, Expect: "EBUSY", Cite: citeReuse},
				{Op: plan.OpPreserve, Session: "next", File: "k0", Token: 4},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "unfinished", Expect: "ENOENT", Cite: citeRetrieveSes},
				{Op: plan.OpRetrieveSession, Session: "next"},
				{Op: plan.OpRetrieve, Session: "next", Token: 4, File: "k0"},
				{Op: plan.OpVerify, File: "k0"},
				{Op: plan.OpFinish, Session: "next"},
			}},
		},
	}
}

func dense1G() *Scenario {
	s := single("dense-1g", "1 GiB memfd fully written in 4 KiB pages",
		plan.File{Name: "d0", Flags: plan.MFDAllowSeal, Size: 1 << 30, Seed: 90, Pos: 1 << 29})
	s.MemoryMB = 3072
	return s
}

// spread returns n extents of length each, evenly spaced over size.
func spread(size int64, n int, each int64) []plan.Extent {
	var out []plan.Extent
	for i := 0; i < n; i++ {
		out = append(out, plan.Extent{Off: int64(i) * (size / int64(n)), Len: each})
	}
	return out
}

// measure is a single-file scenario for the MemTotal and timing figures:
// it runs in a VM of its own, with room for a stock kernel to fill holes.
func measure(name, desc string, size int64, extents []plan.Extent, cmdline string) *Scenario {
	f := plan.File{Name: "m0", Flags: plan.MFDAllowSeal, Size: size, Seed: 77, Extents: extents}
	if cmdline != "" {
		f.Write = plan.WriteMmap
	}
	s := single(name, "measurement: "+desc, f)
	s.Cmdline = cmdline
	s.MemoryMB = int(size>>20) + 2048
	return s
}

// strict returns a copy of s that expects the correct behaviour on every
// kernel: no capability overrides. On stock 7.3 these fail, showing the
// bug the series fixes; on the patched kernel they pass.
func strict(s *Scenario, name string) *Scenario {
	c := *s
	c.Name = name
	c.Description = s.Description + " [strict: fails where the kernel has the bug]"
	c.Tags = nil
	c.verifyExpect = nil
	drop := func(cs []plan.Check) []plan.Check {
		var out []plan.Check
		for _, ch := range cs {
			if strings.HasPrefix(ch.When, "!") {
				continue // the stock-behaviour branch
			}
			ch.When = ""
			out = append(out, ch)
		}
		return out
	}
	c.afterPreserve = drop(s.afterPreserve)
	c.verifyChecks = map[string][]plan.Check{}
	for f, cs := range s.verifyChecks {
		c.verifyChecks[f] = drop(cs)
	}
	return &c
}

// frozenAbort tests the frozen-file contract on the aborted-reboot path:
// while one goroutine faults into holes of a preserved sparse memfd and
// another writes into them, a live update starts, freezes that file, and
// is aborted because the test hook fails the freeze of a file frozen
// after it (two seconds later). The hammers must wait through the frozen
// window (longest page >= 1 s) instead of getting SIGBUS or EPERM, and go
// on after unfreeze; their data, a write after the abort and the original
// data must all survive the real live update that follows.
func frozenAbort() *Scenario {
	const cite = "kernel/README.md, patch 17: faults and writes into holes of a frozen file wait until the live update completes or is aborted"
	return &Scenario{
		Name: "frozen-abort",
		Description: "a live update aborted after freeze (test hook: a later file's freeze fails) while a faulter and a writer " +
			"fill holes of a frozen memfd: they wait, nothing gets SIGBUS or EPERM, and all data survives the next, real live update",
		NeedsConfig: []string{"CONFIG_MEMFD_LUO_TEST_HOOK"},
		Files: []plan.File{
			{Name: "f", Flags: plan.MFDAllowSeal, Size: 8 * MiB, Seed: 1101, Extents: []plan.Extent{{Off: 0, Len: MiB}}},
			{Name: "g", Flags: plan.MFDAllowSeal, Size: MiB, Seed: 1102},
		},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpCreateSession, Session: "a"},
				{Op: plan.OpCreateSession, Session: "b"},
				{Op: plan.OpCreateMemfd, File: "f"},
				{Op: plan.OpCreateMemfd, File: "g"},
				// LUO freezes sessions in creation order: f before g.
				{Op: plan.OpPreserve, Session: "a", File: "f", Token: 1},
				{Op: plan.OpPreserve, Session: "b", File: "g", Token: 1},
				{Op: plan.OpCorruptHandover, File: "g", Data: "freeze-fail"},
				{Op: plan.OpKexecAbort, File: "f", Extent: plan.Extent{Off: 4 * MiB, Len: 2 * MiB}, Seed: 1103,
					Expect: "EIO", Cite: cite, Checks: []plan.Check{
						{Key: "fault_failed", Op: "==", Value: 0},
						{Key: "write_failed", Op: "==", Value: 0},
						{Key: "fault_pages", Op: "==", Value: 256},
						{Key: "write_pages", Op: "==", Value: 256},
						{Key: "fault_longest_ms", Op: ">=", Value: 1000},
						{Key: "write_longest_ms", Op: ">=", Value: 1000},
					}},
				{Op: plan.OpVerify, File: "f"},
				{Op: plan.OpVerify, File: "g"},
				{Op: plan.OpWrite, File: "f", Extent: plan.Extent{Off: 7 * MiB, Len: 64 << 10}, Seed: 1104},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "a"},
				{Op: plan.OpRetrieveSession, Session: "b"},
				{Op: plan.OpRetrieve, Session: "a", Token: 1, File: "f"},
				{Op: plan.OpRetrieve, Session: "b", Token: 1, File: "g"},
				{Op: plan.OpVerify, File: "f"},
				{Op: plan.OpVerify, File: "g"},
				{Op: plan.OpFinish, Session: "a"},
				{Op: plan.OpFinish, Session: "b"},
			}},
		},
	}
}

// swapZram preserves memfds whose pages are in swap. The guest gets swap
// on zram (built in; the agent writes the swap header itself). File a is
// pushed to swap before preserve, which must bring it back (the step fails
// if nothing went to swap, so the scenario cannot pass vacuously). File b
// is preserved with 8 MiB of data, then its preserved pages are paged out
// (they are pinned: the count is only reported) and 2 MiB written into a
// hole after preserve are paged out too: on a kernel that keeps holes
// those folios are not pinned until freeze, which must catch them up from
// swap. In the next kernel both files verify byte for byte with size,
// position and seals; with swap again, the retrieved pages go to swap and
// come back.
func swapZram() *Scenario {
	const (
		cite    = "mm/memfd_luo.c: only the folios present in the file, in memory or in swap, are preserved; swapped out folios are brought back into memory"
		citeNew = "kernel/README.md, patches 8 and 17: folios that enter a hole after preserve are preserved at freeze; until then they are ordinary shmem folios"
		seals   = SealShrink | SealGrow | SealWrite
	)
	noZram := []plan.CapExpect{{Cap: "!zram", Expect: "skip"}}
	inSwap := []plan.Check{{Key: "swapped_kb", Op: ">", Value: 0}}
	return &Scenario{
		Name: "swap-zram",
		Description: "swap on zram: a memfd pushed to swap (MADV_PAGEOUT, at least one page must go) is preserved and comes back; " +
			"a second one's preserved (pinned) pages and pages written into a hole after preserve are paged out before kexec (counts reported); " +
			"every byte, size, position and seal verified, also after paging the retrieved file out again",
		NeedsConfig: []string{"CONFIG_SWAP", "CONFIG_ZRAM"},
		Files: []plan.File{
			{Name: "a", Flags: plan.MFDAllowSeal, Size: 16 * MiB, Seed: 1201, Pos: 4097, Seals: seals, ExpectSeals: u32(seals)},
			{Name: "b", Flags: plan.MFDAllowSeal, Size: 16 * MiB, Seed: 1202, Pos: 3, Extents: []plan.Extent{{Off: 0, Len: 8 * MiB}}},
		},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpSwapon, Data: "64M", Checks: []plan.Check{{Key: "swap_total_kb", Op: ">=", Value: 60 << 10}}},
				{Op: plan.OpCreateMemfd, File: "a"},
				{Op: plan.OpCreateMemfd, File: "b"},
				{Op: plan.OpPageout, File: "a", Checks: inSwap, Cite: "madvise(2) MADV_PAGEOUT: shmem pages of a shared mapping go to swap"},
				{Op: plan.OpMeminfo, Label: "a-in-swap"},
				{Op: plan.OpCreateSession, Session: "s"},
				{Op: plan.OpPreserve, Session: "s", File: "a", Token: 1, Cite: cite},
				{Op: plan.OpPreserve, Session: "s", File: "b", Token: 2},
				{Op: plan.OpMeminfo, Label: "preserved"},
				// Preserved folios are pinned: reported, not required.
				{Op: plan.OpPageout, File: "b", Extent: plan.Extent{Off: 0, Len: 8 * MiB}},
				{Op: plan.OpWrite, File: "b", Extent: plan.Extent{Off: 12 * MiB, Len: 2 * MiB}, Seed: 1203},
				// Folios that entered a hole after preserve are
				// not pinned until freeze, which must catch them
				// up from swap. (Stock 7.3 filled the hole at
				// preserve: pinned.)
				{Op: plan.OpPageout, File: "b", Extent: plan.Extent{Off: 12 * MiB, Len: 2 * MiB}, Cite: citeNew,
					Checks: []plan.Check{{Key: "swapped_kb", Op: ">", Value: 0, When: CapSparse}}},
				{Op: plan.OpMeminfo, Label: "paged-out"},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s"},
				{Op: plan.OpRetrieve, Session: "s", Token: 1, File: "a"},
				{Op: plan.OpRetrieve, Session: "s", Token: 2, File: "b"},
				{Op: plan.OpVerify, File: "a"},
				{Op: plan.OpVerify, File: "b"},
				{Op: plan.OpFinish, Session: "s"},
				{Op: plan.OpSwapon, Data: "64M", ExpectByCap: noZram},
				// Retrieved folios are ordinary page cache again: a
				// pin left behind would keep them from swap.
				{Op: plan.OpPageout, File: "a", ExpectByCap: noZram, Checks: inSwap},
				{Op: plan.OpPageout, File: "b", ExpectByCap: noZram, Checks: inSwap},
				{Op: plan.OpVerify, File: "a"},
				{Op: plan.OpVerify, File: "b"},
			}},
		},
	}
}

// racePreserve races preserve itself: two faulters (shared mappings) and
// two writers (pwrite) sweep a sparse memfd, over data and over holes,
// while the main thread preserves it, unpreserves it (closing the session)
// and preserves it again, five preserves in all. Then they stop, the verifier checks
// that the file holds exactly what they wrote (it knows how far each got),
// a final known pattern is written over their extents, and the next kernel
// verifies every byte. Folios the faulters add to holes behind the
// preserve walk are caught up at freeze. On the debug flavour KASAN and
// lockdep watch the race.
func racePreserve() *Scenario {
	const mib = MiB
	racers := []plan.Racer{
		// Into holes, a page every 2 ms: still filling them when
		// the last preserve runs.
		{How: "fault", Extent: plan.Extent{Off: 4 * mib, Len: 2 * mib}, PaceUS: 2000, Warm: 16},
		{How: "write", Extent: plan.Extent{Off: 12 * mib, Len: 2 * mib}, PaceUS: 2000, Warm: 16},
		{How: "fault", Extent: plan.Extent{Off: 0, Len: 2 * mib}, Warm: 16},       // data
		{How: "write", Extent: plan.Extent{Off: 8 * mib, Len: 2 * mib}, Warm: 16}, // data
	}
	var stopped []plan.Check
	steps := []plan.Step{
		{Op: plan.OpCreateMemfd, File: "r"},
		{Op: plan.OpRaceStart, File: "r", Seed: 1302, Racers: racers},
	}
	// Preserve and unpreserve (close the session) a few times while
	// they race, then preserve for the kexec.
	for i := range 4 {
		ss := fmt.Sprintf("p%d", i)
		steps = append(steps,
			plan.Step{Op: plan.OpCreateSession, Session: ss},
			plan.Step{Op: plan.OpPreserve, Session: ss, File: "r", Token: 1},
			plan.Step{Op: plan.OpCloseSession, Session: ss})
	}
	steps = append(steps,
		plan.Step{Op: plan.OpCreateSession, Session: "s"},
		plan.Step{Op: plan.OpPreserve, Session: "s", File: "r", Token: 1})
	for i, r := range racers {
		n := fmt.Sprintf("%s%d", r.How, i)
		stopped = append(stopped, plan.Check{Key: n + "_failed", Op: "==", Value: 0}, plan.Check{Key: n + "_pages", Op: ">=", Value: r.Warm})
	}
	steps = append(steps,
		plan.Step{Op: plan.OpRaceStop, File: "r", Checks: stopped},
		plan.Step{Op: plan.OpVerify, File: "r"})
	for _, r := range racers {
		steps = append(steps, plan.Step{Op: plan.OpWrite, File: "r", Extent: r.Extent, Seed: 1303})
	}
	steps = append(steps, plan.Step{Op: plan.OpVerify, File: "r"}, plan.Step{Op: plan.OpKexec})
	return &Scenario{
		Name: "race-preserve",
		Description: "two faulters and two writers sweep a sparse 16 MiB memfd (data and holes) while it is preserved, unpreserved and preserved again (5 times); " +
			"stopped, the file holds exactly what they wrote; a final pattern over their extents verifies in the next kernel",
		Files: []plan.File{{Name: "r", Flags: plan.MFDAllowSeal, Size: 16 * mib, Seed: 1301, Pos: 5,
			Extents: []plan.Extent{{Off: 0, Len: 4 * mib}, {Off: 8 * mib, Len: 4 * mib}}}},
		Stages: []plan.Stage{
			{Steps: steps},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s"},
				{Op: plan.OpRetrieve, Session: "s", Token: 1, File: "r"},
				{Op: plan.OpVerify, File: "r"},
				{Op: plan.OpFinish, Session: "s"},
			}},
		},
	}
}

// raceFreeze races freeze: after preserve, racers run through the kexec
// itself. Two sweep pre-populated pages as fast as they can (writes into
// existing pages keep working while frozen, until the CPUs stop); two fill
// holes one page every 50 ms in a single sweep (a fault or write into a
// hole of a frozen file waits until the kernel is replaced). In the next
// kernel each racer's extent must hold a state the racer can have left:
// its current sweep's generation up to one point and the previous one
// after it, every word one the racer wrote (one torn word at the point),
// at least as far as it had got before the kexec started. A hole page
// filled after preserve and before freeze that did not come over, or
// content nobody wrote, fails.
func raceFreeze() *Scenario {
	const mib = MiB
	racers := []plan.Racer{
		{How: "write", Extent: plan.Extent{Off: 0, Len: mib}, Warm: 256},
		{How: "fault", Extent: plan.Extent{Off: mib, Len: mib}, Warm: 256},
		{How: "fault", Extent: plan.Extent{Off: 8 * mib, Len: 4 * mib}, Sweeps: 1, PaceUS: 50000, Warm: 8},
		{How: "write", Extent: plan.Extent{Off: 12 * mib, Len: 4 * mib}, Sweeps: 1, PaceUS: 50000, Warm: 8},
	}
	const cite = "kernel/README.md, patch 17: after freeze, faults and writes into holes wait; writes into existing pages keep working"
	return &Scenario{
		Name: "race-freeze",
		Description: "faulters and writers keep writing a preserved memfd through the kexec (freeze): over its data, and into its holes " +
			"(those wait once frozen); in the next kernel every word is one they wrote, in their sweep order, as far as they had got",
		Files: []plan.File{{Name: "f", Flags: plan.MFDAllowSeal, Size: 16 * mib, Seed: 1401, Pos: 9,
			Extents: []plan.Extent{{Off: 0, Len: 8 * mib}}}},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpCreateSession, Session: "s"},
				{Op: plan.OpCreateMemfd, File: "f"},
				{Op: plan.OpPreserve, Session: "s", File: "f", Token: 1},
				{Op: plan.OpRaceStart, File: "f", Seed: 1402, Racers: racers},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s"},
				{Op: plan.OpRetrieve, Session: "s", Token: 1, File: "f"},
				{Op: plan.OpVerify, File: "f", Cite: cite, Checks: []plan.Check{
					{Key: "write0_gen", Op: ">=", Value: 1},
					{Key: "fault1_gen", Op: ">=", Value: 1},
					{Key: "fault2_progress_pages", Op: ">=", Value: 8},
					{Key: "write3_progress_pages", Op: ">=", Value: 8},
				}},
				{Op: plan.OpFinish, Session: "s"},
			}},
		},
	}
}
