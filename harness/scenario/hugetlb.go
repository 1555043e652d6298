package scenario

import (
	"fmt"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Hugetlb memfds (series part 3). A kernel with the "hugetlb" feature
// preserves MFD_HUGETLB memfds in memfd-v3 when memfd_luo.abi=v3, which
// the scenarios put on every kernel's command line; stock 7.3 refuses
// them (ENOENT) and ignores the parameter. A next kernel without the
// memfd-v3 handler cannot open any session that holds one (EIO).

const (
	// CapHugetlb: MFD_HUGETLB memfds can be preserved (features token).
	CapHugetlb = "hugetlb"
	// CapNUMA: the kernel has per-node counters (agent.DetectCaps).
	CapNUMA = "numa"

	// capHandedOver: the previous kernel could send hugetlb memfds and
	// this one can take them, i.e. huge pages were handed over.
	capHandedOver = CapHugetlb + "&prev:" + CapHugetlb

	citeHugetlbV3   = "mm/memfd_luo.c (series): hugetlb memfds are preserved in memfd-v3 only, with memfd_luo.abi=v3; stock 7.3 accepts only shmem, LUO answers -ENOENT"
	citeHugetlbPool = "mm/hugetlb.c hugetlb_luo_claim_pool(), hugetlb_restore_folio() (series): the next kernel allocates the handed-over pages fewer at boot and counts each retrieved one as a persistent page in use"
)

// hugePool is a pool of huge pages of one size on the command line.
type hugePool struct {
	kB int64 // huge page size in KiB
	n  int64 // hugepages=
}

// gigantic pools are allocated before the next kernel can read what the
// previous one handed over: handed-over pages join them as surplus pages.
func (p hugePool) gigantic() bool { return p.kB >= 1<<20 }

func (p hugePool) cmdline() string {
	sz := fmt.Sprintf("%dM", p.kB>>10)
	if p.gigantic() {
		sz = fmt.Sprintf("%dG", p.kB>>20)
	}
	return fmt.Sprintf("hugepagesz=%s hugepages=%d", sz, p.n)
}

// key names a pool counter as the agent's meminfo step reports it
// (agent.HugepageCounters); node is "" for the whole pool.
func (p hugePool) key(node, counter string) string {
	k := fmt.Sprintf("hugepages-%dkB/%s_hugepages", p.kB, counter)
	if node != "" {
		k = node + "/" + k
	}
	return k
}

// counts checks the pool's counters under condition when: on the whole
// pool, and on node 0 (the guests have one node) when the kernel has NUMA
// and so per-node counters.
func (p hugePool) counts(when string, nr, free, surplus int64) []plan.Check {
	var cs []plan.Check
	for _, node := range []string{"", "node0"} {
		w := when
		if node != "" {
			w = CapNUMA
			if when != "" {
				w = when + "&" + CapNUMA
			}
		}
		cs = append(cs,
			plan.Check{Key: p.key(node, "nr"), Op: "==", Value: nr, When: w},
			plan.Check{Key: p.key(node, "free"), Op: "==", Value: free, When: w},
			plan.Check{Key: p.key(node, "surplus"), Op: "==", Value: surplus, When: w})
	}
	return append(cs, plan.Check{Key: p.key("", "resv"), Op: "==", Value: 0, When: when})
}

// relative checks the pool's counters against those of the stage's meminfo
// step labelled ref: nr and free grown by dNr and dFree, surplus equal to
// surplus (the boot pool has none).
func (p hugePool) relative(when, ref string, dNr, dFree, surplus int64) []plan.Check {
	at := func(c string) string { return "@" + ref + "." + p.key("", c) }
	return []plan.Check{
		{Key: p.key("", "nr"), Op: "==", Ref: at("nr"), Value: dNr, When: when},
		{Key: p.key("", "free"), Op: "==", Ref: at("free"), Value: dFree, When: when},
		{Key: p.key("", "surplus"), Op: "==", Value: surplus, When: when},
		{Key: p.key("", "resv"), Op: "==", Value: 0, When: when},
	}
}

// nextKernel checks the next kernel's pool: handedOver when huge pages were
// handed over (capHandedOver), and the pool its command line asks for when
// not (the previous kernel sent none, or this one cannot take them).
func (p hugePool) nextKernel(handedOver []plan.Check) []plan.Check {
	cs := append([]plan.Check(nil), handedOver...)
	cs = append(cs, p.counts("!"+CapHugetlb, p.n, p.n, 0)...)
	return append(cs, p.counts("!"+prev(CapHugetlb), p.n, p.n, 0)...)
}

// onHugetlbFile is what a step on a hugetlb file expects in the next
// kernel: none when the previous kernel sent nothing, ok where the session
// could be opened (memfd-v3 read), and the step's own Expect otherwise.
func onHugetlbFile(none string) []plan.CapExpect {
	return []plan.CapExpect{{Cap: "!" + prev(CapHugetlb), Expect: none}, {Cap: CapMemfdV3, Expect: "ok"}}
}

// hugetlbFile is one file of a hugetlb scenario and the huge pages its
// writes populate.
type hugetlbFile struct {
	plan.File
	pages int64 // huge pages written (0 for a shmem file)
}

func (f hugetlbFile) hugetlb() bool { return f.Flags&plan.MFDHugetlb != 0 }

// hugetlbScenario preserves files in one session and checks the pool at
// every step: before and after preserve, at the next kernel's boot,
// after retrieve, and after the files are closed. The expectations cover
// every pair of kernels:
//
//   - sender without the feature (stock): preserve ENOENT, nothing
//     arrives, the next kernel's pool is what its command line says;
//   - sender with it, next kernel without memfd-v3 (stock): the session
//     cannot be opened (EIO), the pages stay reserved outside the pool;
//   - both with it: the next kernel boots with the pool hugepages=
//     asks for less the P handed-over pages, and each retrieved page
//     joins it as a persistent page in use: the pool is what it would be
//     had the file been created there (Total N, Free N-P). Data, size,
//     seals, position and holes come back, and closing the file leaves
//     N free pages.
func hugetlbScenario(name, desc string, pool hugePool, memMB int, files ...hugetlbFile) *Scenario {
	s := &Scenario{
		Name:        name,
		Description: desc,
		Cmdline:     pool.cmdline() + " memfd_luo.abi=v3",
		MemoryMB:    memMB,
	}
	var pages int64
	for _, f := range files {
		s.Files = append(s.Files, f.File)
		pages += f.pages
	}
	sent := prev(CapHugetlb)
	// A shmem file goes over whatever the kernels, unless the session
	// cannot be opened.
	shmemNext := onHugetlbFile("ok")

	st0 := []plan.Step{
		{Op: plan.OpMeminfo, Label: "start", Checks: pool.counts("", pool.n, pool.n, 0)},
		{Op: plan.OpCreateSession, Session: "s0"},
	}
	for _, f := range files {
		st0 = append(st0, plan.Step{Op: plan.OpCreateMemfd, File: f.Name})
	}
	for i, f := range files {
		p := plan.Step{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: uint64(0x100 + i)}
		if f.hugetlb() {
			p.Expect, p.ExpectByCap, p.Cite = "ENOENT", []plan.CapExpect{{Cap: CapHugetlb, Expect: "ok"}}, citeHugetlbV3
		}
		st0 = append(st0, p)
	}
	st0 = append(st0,
		// Written pages are in use whether or not preserve took them.
		plan.Step{Op: plan.OpMeminfo, Label: "preserved", Checks: pool.counts("", pool.n, pool.n-pages, 0)},
		plan.Step{Op: plan.OpKexec})

	// A pool that is not gigantic is allocated with room for the pages
	// handed over; they join it as persistent pages. A gigantic pool is
	// allocated before the handover can be read, and on a KHO boot only
	// from memory that holds no preserved page, so it may come up short
	// (seen in a 4 GiB guest: 0 of 1 allocated); the handed-over pages
	// join whatever it got as surplus pages, which the checks express
	// relative to the pool at boot.
	boot := pool.counts(capHandedOver, pool.n-pages, pool.n-pages, 0)
	if pool.gigantic() {
		boot = []plan.Check{{Key: pool.key("", "nr"), Op: "<=", Value: pool.n, When: capHandedOver},
			{Key: pool.key("", "surplus"), Op: "==", Value: 0, When: capHandedOver}}
	}
	boot = pool.nextKernel(boot)
	st1 := []plan.Step{
		{Op: plan.OpMeminfo, Label: "boot", Checks: boot, Cite: citeHugetlbPool},
		{Op: plan.OpRetrieveSession, Session: "s0", ExpectByCap: []plan.CapExpect{
			{Cap: CapMemfdV3, Expect: "ok"}, {Cap: sent, Expect: "EIO"}}, Cite: citeNoV3Handler},
	}
	for i, f := range files {
		r := plan.Step{Op: plan.OpRetrieve, Session: "s0", Token: uint64(0x100 + i), File: f.Name, ExpectByCap: shmemNext, Expect: "skip"}
		v := plan.Step{Op: plan.OpVerify, File: f.Name, ExpectByCap: shmemNext, Expect: "skip"}
		if f.hugetlb() {
			r.ExpectByCap, r.Cite = onHugetlbFile("ENOENT"), citeHugetlbV3
			v.ExpectByCap = onHugetlbFile("skip")
			v.Checks = []plan.Check{{Key: "blocks", Op: "==", Value: f.pages * pool.kB * 2}}
		}
		st1 = append(st1, r, v)
	}
	retrieved := pool.counts(capHandedOver, pool.n, pool.n-pages, 0)
	if pool.gigantic() {
		retrieved = pool.relative(capHandedOver, "boot", pages, 0, pages)
	}
	retrieved = pool.nextKernel(retrieved)
	st1 = append(st1, plan.Step{Op: plan.OpMeminfo, Label: "retrieved", Checks: retrieved, Cite: citeHugetlbPool})
	for _, f := range files {
		c := plan.Step{Op: plan.OpCloseFile, File: f.Name, ExpectByCap: shmemNext, Expect: "skip"}
		if f.hugetlb() {
			c.ExpectByCap = onHugetlbFile("skip")
		}
		st1 = append(st1, c)
	}
	// LUO holds a retrieved file until its session is finished.
	closed := pool.counts("", pool.n, pool.n, 0)
	if pool.gigantic() {
		closed = append(pool.relative(capHandedOver, "boot", 0, 0, 0), pool.counts("!"+capHandedOver, pool.n, pool.n, 0)...)
	}
	st1 = append(st1,
		plan.Step{Op: plan.OpFinish, Session: "s0", ExpectByCap: []plan.CapExpect{
			{Cap: CapMemfdV3, Expect: "ok"}, {Cap: sent, Expect: "skip"}}, Cite: citeReuse},
		plan.Step{Op: plan.OpMeminfo, Label: "closed", Checks: closed})
	s.Stages = []plan.Stage{{Steps: st0}, {Steps: st1}}
	return s
}

var pool2M = hugePool{kB: 2048, n: 16}

// hugetlb2M: a dense hugetlb memfd with seals and a position.
func hugetlb2M() *Scenario {
	return hugetlbScenario("hugetlb-2m",
		"MFD_HUGETLB memfd of 2 MiB pages, every page written, sealed, position mid-file; pool counters at every step (stock 7.3: preserve fails with ENOENT)",
		pool2M, 1024,
		hugetlbFile{File: plan.File{Name: "hg0", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: 8 * MiB, Seed: 60,
			Write: plan.WriteMmap, Pos: 3*MiB + 5, Seals: SealGrow | SealShrink, ExpectSeals: u32(SealGrow | SealShrink)}, pages: 4})
}

// hugetlb2MSparse: holes of a hugetlb memfd stay holes.
func hugetlb2MSparse() *Scenario {
	return hugetlbScenario("hugetlb-2m-sparse",
		"64 MiB MFD_HUGETLB memfd with 3 of its 32 huge pages written: holes stay holes, i_blocks counts 3 pages",
		pool2M, 1024,
		hugetlbFile{File: plan.File{Name: "hs0", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: 64 * MiB, Seed: 61,
			Write: plan.WriteMmap, Extents: []plan.Extent{{Off: 0, Len: MiB}, {Off: 20*MiB + 100, Len: MiB}, {Off: 62 * MiB, Len: 2 * MiB}}}, pages: 3})
}

// hugetlbMixed: shmem and hugetlb memfds in one session.
func hugetlbMixed() *Scenario {
	return hugetlbScenario("hugetlb-mixed",
		"one session with a shmem memfd and a hugetlb memfd: both come back, only the hugetlb one touches the pool",
		pool2M, 1024,
		hugetlbFile{File: plan.File{Name: "mx0", Flags: plan.MFDAllowSeal, Size: 3*MiB + 7, Seed: 62, Pos: 11}},
		hugetlbFile{File: plan.File{Name: "mx1", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: 4 * MiB, Seed: 63,
			Write: plan.WriteMmap, Pos: 2 * MiB}, pages: 2})
}

// hugetlb1G: one gigantic page handed over. The guest has 6 GiB so that
// each kernel finds a free 1 GiB block for its own pool page and KHO still
// finds room for its scratch areas, which it sizes from early memblock
// use, the boot pool included (a 4 GiB guest failed to reserve them once:
// "KHO: Failed to reserve nid 0 scratch buffer").
func hugetlb1G() *Scenario {
	return hugetlbScenario("hugetlb-1g",
		"MFD_HUGETLB memfd of one 1 GiB page, 2 MiB of it written: the gigantic page comes back whole and joins the next kernel's pool as a surplus page",
		hugePool{kB: 1 << 20, n: 1}, 6144,
		hugetlbFile{File: plan.File{Name: "hg1", Flags: plan.MFDHugetlb | plan.MFDHuge1GB | plan.MFDAllowSeal, Size: 1 << 30, Seed: 64,
			Write: plan.WriteMmap, Extents: []plan.Extent{{Off: 0, Len: MiB}, {Off: 700 * MiB, Len: MiB}}, Pos: 77}, pages: 1})
}

// hugetlbChain: a hugetlb memfd preserved, retrieved and preserved again
// across three kexecs, the pool checked at every hop: the handed-over
// count is rebuilt by each kernel, so every boot leaves room for the
// pages and every retrieve fills it.
func hugetlbChain() *Scenario {
	const hops = 3
	pool := pool2M
	f := plan.File{Name: "hc0", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: 16 * MiB, Seed: 65,
		Write: plan.WriteMmap, Pos: 5, Extents: []plan.Extent{{Off: 0, Len: 3 * MiB}, {Off: 10 * MiB, Len: MiB}}}
	const pages = 3 // huge pages 0, 1 and 5
	s := &Scenario{
		Name:        "hugetlb-chain-3-hops",
		Description: "a sparse hugetlb memfd preserved again at every hop of three kexecs; pool counters checked at every boot, retrieve and preserve",
		Cmdline:     pool.cmdline() + " memfd_luo.abi=v3",
		MemoryMB:    1024,
		Files:       []plan.File{f},
		OneKernel:   true,
	}
	sent := prev(CapHugetlb)
	held := []plan.CapExpect{{Cap: "!" + sent, Expect: "skip"}, {Cap: "!" + CapMemfdV3, Expect: "skip"}, {Cap: CapHugetlb, Expect: "ok"}}
	preserve := func(session string, first bool) []plan.Step {
		p := plan.Step{Op: plan.OpPreserve, Session: session, File: f.Name, Token: 0x100,
			Expect: "ENOENT", ExpectByCap: []plan.CapExpect{{Cap: CapHugetlb, Expect: "ok"}}, Cite: citeHugetlbV3}
		if !first {
			p.Expect, p.ExpectByCap = "skip", held
		}
		inUse := pool.counts("", pool.n, pool.n-pages, 0)
		if !first {
			inUse = pool.counts(capHandedOver, pool.n, pool.n-pages, 0)
		}
		return []plan.Step{
			{Op: plan.OpCreateSession, Session: session},
			p,
			{Op: plan.OpMeminfo, Label: "preserved", Checks: inUse},
			{Op: plan.OpKexec},
		}
	}
	retrieve := func(session string) []plan.Step {
		boot := pool.nextKernel(pool.counts(capHandedOver, pool.n-pages, pool.n-pages, 0))
		retrieved := pool.nextKernel(pool.counts(capHandedOver, pool.n, pool.n-pages, 0))
		return []plan.Step{
			{Op: plan.OpMeminfo, Label: "boot", Checks: boot, Cite: citeHugetlbPool},
			{Op: plan.OpRetrieveSession, Session: session, ExpectByCap: []plan.CapExpect{
				{Cap: CapMemfdV3, Expect: "ok"}, {Cap: sent, Expect: "EIO"}}, Cite: citeNoV3Handler},
			{Op: plan.OpRetrieve, Session: session, Token: 0x100, File: f.Name, Expect: "skip",
				ExpectByCap: onHugetlbFile("ENOENT")},
			{Op: plan.OpVerify, File: f.Name, Expect: "skip", ExpectByCap: onHugetlbFile("skip"),
				Checks: []plan.Check{{Key: "blocks", Op: "==", Value: pages * pool.kB * 2}}},
			{Op: plan.OpMeminfo, Label: "retrieved", Checks: retrieved, Cite: citeHugetlbPool},
			// LUO holds a retrieved file until its session is finished.
			{Op: plan.OpFinish, Session: session, ExpectByCap: []plan.CapExpect{
				{Cap: CapMemfdV3, Expect: "ok"}, {Cap: sent, Expect: "skip"}}, Cite: citeReuse},
		}
	}
	st0 := []plan.Step{
		{Op: plan.OpMeminfo, Label: "start", Checks: pool.counts("", pool.n, pool.n, 0)},
		{Op: plan.OpCreateMemfd, File: f.Name},
	}
	s.Stages = append(s.Stages, plan.Stage{Steps: append(st0, preserve("s0", true)...)})
	for h := 1; h < hops; h++ {
		steps := retrieve(fmt.Sprintf("s%d", h-1))
		steps = append(steps, preserve(fmt.Sprintf("s%d", h), false)...)
		s.Stages = append(s.Stages, plan.Stage{Steps: steps})
	}
	last := retrieve(fmt.Sprintf("s%d", hops-1))
	last = append(last,
		plan.Step{Op: plan.OpCloseFile, File: f.Name, Expect: "skip", ExpectByCap: onHugetlbFile("skip")},
		plan.Step{Op: plan.OpMeminfo, Label: "closed", Checks: pool.counts("", pool.n, pool.n, 0)})
	s.Stages = append(s.Stages, plan.Stage{Steps: last})
	return s
}

// hugetlbPoolSmall: the next kernel asks for a smaller pool (hugepages=2)
// than the 4 pages handed over. What happens is defined: the boot
// allocation leaves room for 2 (it never goes below 0), the first 2
// retrieved pages fill it as persistent pages and the other 2 become
// surplus pages; when the file goes, the surplus pages go back to the page
// allocator and the pool is the 2 pages the command line asked for.
func hugetlbPoolSmall() *Scenario {
	old, next := pool2M, hugePool{kB: 2048, n: 2}
	const pages = 4
	f := plan.File{Name: "hp0", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: 8 * MiB, Seed: 66, Write: plan.WriteMmap}
	s := &Scenario{
		Name:        "hugetlb-pool-small",
		Description: "4 huge pages handed over to a kernel booted with hugepages=2: 2 persistent and 2 surplus pages after retrieve, 2 free after finish",
		Cmdline:     old.cmdline() + " memfd_luo.abi=v3",
		HopCmdline:  map[int]string{0: next.cmdline() + " memfd_luo.abi=v3"},
		MemoryMB:    1024,
		Files:       []plan.File{f},
		OneKernel:   true,
	}
	sent := prev(CapHugetlb)
	onNext := onHugetlbFile("skip")
	boot := next.nextKernel(next.counts(capHandedOver, 0, 0, 0))
	retrieved := next.nextKernel(next.counts(capHandedOver, pages, 0, pages-next.n))
	closed := next.counts("", next.n, next.n, 0)
	s.Stages = []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "start", Checks: old.counts("", old.n, old.n, 0)},
			{Op: plan.OpCreateMemfd, File: f.Name},
			{Op: plan.OpCreateSession, Session: "s0"},
			{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: 0x100, Expect: "ENOENT",
				ExpectByCap: []plan.CapExpect{{Cap: CapHugetlb, Expect: "ok"}}, Cite: citeHugetlbV3},
			{Op: plan.OpMeminfo, Label: "preserved", Checks: old.counts("", old.n, old.n-pages, 0)},
			{Op: plan.OpKexec},
		}},
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "boot", Checks: boot, Cite: citeHugetlbPool},
			{Op: plan.OpRetrieveSession, Session: "s0"},
			{Op: plan.OpRetrieve, Session: "s0", Token: 0x100, File: f.Name, Expect: "ENOENT",
				ExpectByCap: []plan.CapExpect{{Cap: sent, Expect: "ok"}}},
			{Op: plan.OpVerify, File: f.Name, Expect: "skip", ExpectByCap: onNext},
			{Op: plan.OpMeminfo, Label: "retrieved", Checks: retrieved, Cite: citeHugetlbPool},
			{Op: plan.OpCloseFile, File: f.Name, Expect: "skip", ExpectByCap: onNext},
			{Op: plan.OpFinish, Session: "s0", Cite: citeReuse},
			{Op: plan.OpMeminfo, Label: "closed", Checks: closed},
		}},
	}
	return s
}

// hugetlbCorruptionClasses are the test hook's classes run on a hugetlb
// memfd (memfd-v3, 2 MiB pages). Where the records still name the file's
// pages, every page of the failed file comes back, as a free persistent
// page of the pool.
var hugetlbCorruptionClasses = []corruption{
	{class: "seals", abi: "v3", errno: "ENOTSUP", detail: "a seal the kernel does not know"},
	{class: "size", abi: "v3", errno: "EINVAL", detail: "i_size beyond MAX_LFS_FILESIZE, not a multiple of the huge page size"},
	{class: "count", abi: "v3", errno: "EINVAL", detail: "the header counts one folio more than the runs hold"},
	{class: "flags", abi: "v3", errno: "EINVAL", detail: "an unknown folio flag in a run"},
	{class: "index-eof", abi: "v3", errno: "EINVAL", detail: "a run starting at i_size"},
	{class: "hugetlb-shift", abi: "v3", errno: "EINVAL", detail: "the header claims 1 GiB pages for a 4 MiB file"},
	{class: "hugetlb-order", abi: "v3", errno: "EINVAL", detail: "the first run claims 4 KiB folios in a file of 2 MiB pages",
		leaks: "a run of contiguous pages now steps 4 KiB at a time: it names the first huge page, then only tail pages"},
}

// hugetlbCorruptions run the corruption scenarios with hugetlb victims:
// the victim's retrieve fails with the class's errno, a shmem file of the
// same session and one of another session verify, and the pool and
// MemTotal grow by what a clean hugetlb twin gave back. The scenarios
// share a VM, so the pool is checked relative to the step before.
func hugetlbCorruptions() Catalogue {
	var c Catalogue
	for _, k := range hugetlbCorruptionClasses {
		c = append(c, tagged(hugetlbCorruptionScenario(k), "default", "corruption", "hugetlb"))
	}
	return c
}

func hugetlbCorruptionScenario(k corruption) *Scenario {
	const pages = 2
	pool := hugePool{kB: 2048, n: 32}
	size := pages * pool.kB << 10
	huge := func(n string, seed uint64) plan.File {
		return plan.File{Name: n, Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: size, Seed: seed, Write: plan.WriteMmap, Pos: 9}
	}
	shmem := func(n string, seed uint64) plan.File {
		return plan.File{Name: n, Flags: plan.MFDAllowSeal, Size: MiB, Seed: seed, Pos: 7}
	}
	const slack = 16 // pages: the record streams of two files differ
	victim := []plan.Check{
		{Key: "MemTotal_delta", Op: ">=", Ref: "@twin.MemTotal_delta", Value: -slack},
		{Key: "MemTotal_delta", Op: "<=", Ref: "@twin.MemTotal_delta", Value: slack},
	}
	// The failed file's pages join the pool free: the boot allocation
	// left room for them.
	victim = append(victim, pool.relative("", "twin", pages, pages, 0)...)
	desc := fmt.Sprintf("corrupt handover data of a hugetlb memfd (%s: %s): that file fails with %s", k.class, k.detail, k.errno)
	if k.leaks == "" {
		desc += " and its huge pages join the pool free (HugePages_Total and _Free +2, MemTotal as its clean twin's)"
	} else {
		victim = nil
		desc += "; pages it no longer names stay reserved (" + k.leaks + ")"
	}
	desc += "; the shmem files of its session and of another session verify"
	return &Scenario{
		Name:        "corrupt-hugetlb-" + k.class,
		Description: desc,
		Cmdline:     pool.cmdline() + " memfd_luo.abi=v3",
		MemoryMB:    1024,
		NeedsConfig: []string{"CONFIG_MEMFD_LUO_TEST_HOOK"},
		// The pool checks need the hugetlb handover on both sides.
		OneKernel: true,
		Files:     []plan.File{huge("v", 1101), shmem("b", 1102), shmem("o", 1103), huge("t", 1104)},
		Stages: corruptionStages(k, corruptionChecks{
			twin: append([]plan.Check{{Key: "MemTotal_delta", Op: ">=", Value: size >> 10}},
				pool.relative("", "base", pages, 0, 0)...),
			victim:     victim,
			twinVerify: []plan.Check{{Key: "blocks", Op: "==", Value: pages * pool.kB * 2}},
			cite:       citeHugetlbPool,
		}),
	}
}

// hugetlbCgroup: the next kernel's cgroups are charged for retrieved huge
// pages as for pages faulted in there, and a hugetlb cgroup limit fails a
// retrieve the way it fails fallocate() (ENOSPC), giving every page of
// that file back to the pool. The agent runs in a cgroup of its own in
// both kernels: "old" without limits, "lim" with hugetlb.2MB.max at 2
// pages. File b (2 pages) fits; file a (3 pages) does not. File c (1
// page) is never retrieved: finish gives its page to the pool.
func hugetlbCgroup() *Scenario {
	pool := pool2M
	const aPages, bPages, cPages = 3, 2, 1
	page := pool.kB << 10
	a := plan.File{Name: "cga", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: aPages * page, Seed: 67, Write: plan.WriteMmap, Pos: 1}
	b := plan.File{Name: "cgb", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: bPages * page, Seed: 68, Write: plan.WriteMmap, Pos: 2}
	c := plan.File{Name: "cgc", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: cPages * page, Seed: 71, Write: plan.WriteMmap}
	charged := func(when string, pages int64) []plan.Check {
		return []plan.Check{
			{Key: "cgroup/hugetlb.2MB.current", Op: "==", Value: pages * page, When: when},
			{Key: "cgroup/hugetlb.2MB.rsvd.current", Op: "==", Value: pages * page, When: when},
		}
	}
	s := &Scenario{
		Name: "hugetlb-cgroup",
		Description: "hugetlb memfds retrieved inside a hugetlb cgroup: page and reservation charged as if faulted in there (hugetlb.2MB.current, .rsvd.current, memory.current); " +
			"a file beyond hugetlb.2MB.max fails with ENOSPC and its pages join the pool free, as do those of a file never retrieved at finish",
		Cmdline:   pool.cmdline() + " memfd_luo.abi=v3",
		MemoryMB:  1024,
		Files:     []plan.File{a, b, c},
		OneKernel: true,
	}
	sent := prev(CapHugetlb)
	preserve := func(f plan.File, tok uint64) plan.Step {
		return plan.Step{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: tok, Expect: "ENOENT",
			ExpectByCap: []plan.CapExpect{{Cap: CapHugetlb, Expect: "ok"}}, Cite: citeHugetlbV3}
	}
	citeCg := "mm/hugetlb.c hugetlb_restore_folio() (series): the retrieving task's hugetlb cgroup is charged for the page and its reservation, its memory cgroup as hugetlb_alloc_folio() does; a charge beyond the limit fails like fallocate() (-ENOSPC) and the page joins the pool"
	s.Stages = []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpCgroup, Path: "old"},
			{Op: plan.OpMeminfo, Label: "start", Checks: append(pool.counts("", pool.n, pool.n, 0), charged("", 0)...)},
			{Op: plan.OpCreateSession, Session: "s0"},
			{Op: plan.OpCreateMemfd, File: a.Name},
			{Op: plan.OpCreateMemfd, File: b.Name},
			{Op: plan.OpCreateMemfd, File: c.Name},
			{Op: plan.OpMeminfo, Label: "written", Checks: charged("", aPages+bPages+cPages)},
			preserve(a, 0x100),
			preserve(b, 0x101),
			preserve(c, 0x102),
			{Op: plan.OpMeminfo, Label: "preserved", Checks: pool.counts("", pool.n, pool.n-aPages-bPages-cPages, 0)},
			{Op: plan.OpKexec},
		}},
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "boot", Checks: pool.nextKernel(pool.counts(capHandedOver, pool.n-aPages-bPages-cPages, pool.n-aPages-bPages-cPages, 0)), Cite: citeHugetlbPool},
			{Op: plan.OpCgroup, Path: "lim", Args: []string{fmt.Sprintf("hugetlb.2MB.max=%d", bPages*page)}},
			{Op: plan.OpRetrieveSession, Session: "s0"},
			{Op: plan.OpRetrieve, Session: "s0", Token: 0x101, File: b.Name, Expect: "ENOENT", ExpectByCap: []plan.CapExpect{{Cap: sent, Expect: "ok"}}},
			{Op: plan.OpMeminfo, Label: "b", Cite: citeCg, Checks: append(append(charged(capHandedOver, bPages),
				plan.Check{Key: "cgroup/memory.current", Op: ">=", Value: bPages * page, When: capHandedOver}),
				pool.counts(capHandedOver, pool.n-aPages-cPages, pool.n-aPages-bPages-cPages, 0)...)},
			{Op: plan.OpRetrieve, Session: "s0", Token: 0x100, File: a.Name, Expect: "ENOENT", ExpectByCap: []plan.CapExpect{{Cap: sent, Expect: "ENOSPC"}}, Cite: citeCg},
			{Op: plan.OpMeminfo, Label: "a-refused", Cite: citeCg, Checks: append(charged(capHandedOver, bPages),
				pool.counts(capHandedOver, pool.n-cPages, pool.n-bPages-cPages, 0)...)},
			{Op: plan.OpVerify, File: b.Name, Expect: "skip", ExpectByCap: []plan.CapExpect{{Cap: sent, Expect: "ok"}},
				Checks: []plan.Check{{Key: "blocks", Op: "==", Value: bPages * pool.kB * 2}}},
			{Op: plan.OpCloseFile, File: b.Name, Expect: "skip", ExpectByCap: []plan.CapExpect{{Cap: sent, Expect: "ok"}}},
			// LUO holds b until finish; c waits in KHO.
			{Op: plan.OpFinish, Session: "s0", Cite: citeReuse},
			{Op: plan.OpMeminfo, Label: "closed", Checks: append(charged("", 0), pool.counts("", pool.n, pool.n, 0)...)},
		}},
	}
	return s
}

// hugetlbSurplus: a file of surplus pages. The old kernel's pool is empty
// and vm.nr_overcommit_hugepages lets mmap() take pages beyond it; the
// next kernel, booted with the same empty pool, has no boot page to leave
// out for them, so they come back as surplus pages: the pool is what it
// was in the old kernel, and empty again once the file is gone.
func hugetlbSurplus() *Scenario {
	pool := hugePool{kB: 2048, n: 0}
	const pages = 2
	f := plan.File{Name: "hsu", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: pages * 2 * MiB, Seed: 69, Write: plan.WriteMmap, Pos: 3}
	sent := prev(CapHugetlb)
	onNext := []plan.CapExpect{{Cap: sent, Expect: "ok"}}
	s := &Scenario{
		Name:        "hugetlb-surplus",
		Description: "a hugetlb memfd of surplus pages (empty pool, vm.nr_overcommit_hugepages=8) comes back as surplus pages into the same empty pool, and leaves it empty when closed",
		Cmdline:     pool.cmdline() + " memfd_luo.abi=v3",
		MemoryMB:    1024,
		Files:       []plan.File{f},
		OneKernel:   true,
	}
	s.Stages = []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "start", Checks: pool.counts("", 0, 0, 0)},
			{Op: plan.OpSysctl, Path: "vm/nr_overcommit_hugepages", Data: "8"},
			{Op: plan.OpCreateSession, Session: "s0"},
			{Op: plan.OpCreateMemfd, File: f.Name},
			{Op: plan.OpMeminfo, Label: "written", Checks: pool.counts("", pages, 0, pages)},
			{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: 0x100, Expect: "ENOENT",
				ExpectByCap: []plan.CapExpect{{Cap: CapHugetlb, Expect: "ok"}}, Cite: citeHugetlbV3},
			{Op: plan.OpMeminfo, Label: "preserved", Checks: pool.counts("", pages, 0, pages)},
			{Op: plan.OpKexec},
		}},
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "boot", Checks: pool.counts("", 0, 0, 0), Cite: citeHugetlbPool},
			{Op: plan.OpRetrieveSession, Session: "s0"},
			{Op: plan.OpRetrieve, Session: "s0", Token: 0x100, File: f.Name, Expect: "ENOENT", ExpectByCap: onNext},
			{Op: plan.OpVerify, File: f.Name, Expect: "skip", ExpectByCap: onNext,
				Checks: []plan.Check{{Key: "blocks", Op: "==", Value: pages * pool.kB * 2}}},
			{Op: plan.OpMeminfo, Label: "retrieved", Checks: pool.nextKernel(pool.counts(capHandedOver, pages, 0, pages)), Cite: citeHugetlbPool},
			{Op: plan.OpCloseFile, File: f.Name, Expect: "skip", ExpectByCap: onNext},
			{Op: plan.OpFinish, Session: "s0", Cite: citeReuse},
			{Op: plan.OpMeminfo, Label: "closed", Checks: pool.counts("", 0, 0, 0)},
		}},
	}
	return s
}

// hugetlbScratch: huge pages that sit in KHO scratch when they are
// preserved are moved out first. The next kernel boots from scratch, so a
// preserved page left there would be overwritten (and KHO warns when asked
// to preserve one). The pool is allocated at run time (vm.nr_hugepages),
// when the page allocator serves it partly from scratch, which is CMA.
// The long-term pin of preserve migrates every page in CMA to a free pool
// page outside it: afterwards none of the file's pages is in scratch, and
// the data arrives whole.
func hugetlbScratch() *Scenario {
	const pages, poolPages = 60, 64
	f := plan.File{Name: "hsc", Flags: plan.MFDHugetlb | plan.MFDAllowSeal, Size: pages * 2 * MiB, Seed: 70, Write: plan.WriteMmap, Pos: 4}
	sent := prev(CapHugetlb)
	onNext := []plan.CapExpect{{Cap: sent, Expect: "ok"}}
	base := int64(pages * 2 * MiB / 4096)
	return &Scenario{
		Name:        "hugetlb-scratch",
		Description: fmt.Sprintf("a pool of %d huge pages allocated at run time, partly from KHO scratch (CMA); after preserve none of the file's %d pages is in scratch (the pin migrated them), and the data arrives whole", poolPages, pages),
		Cmdline:     "hugepagesz=2M hugepages=0 kho_scratch=64M,448M,16M memfd_luo.abi=v3",
		MemoryMB:    1024,
		Files:       []plan.File{f},
		OneKernel:   true,
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpSysctl, Path: "vm/nr_hugepages", Data: fmt.Sprint(poolPages)},
				{Op: plan.OpMeminfo, Label: "pool", Checks: []plan.Check{{Key: "hugepages-2048kB/nr_hugepages", Op: "==", Value: poolPages}}},
				{Op: plan.OpCreateSession, Session: "s0"},
				{Op: plan.OpCreateMemfd, File: f.Name},
				// The page allocator serves movable allocations,
				// the run-time pool among them, from CMA first
				// while free CMA is over half of free memory.
				// kho_scratch= on the command line makes scratch
				// that large on the normal flavour (the debug
				// flavour's own, larger low-memory scratch comes
				// later on the command line and wins), and the
				// file takes all but 4 pages of the pool: 51-52
				// of its 60 pages were in scratch on normal,
				// 14-15 on debug, when this was written. With the
				// default scratch size it was 0-3 on normal, and
				// a run with none proves nothing, so a kernel
				// that can preserve the file must have one there. The migration targets are
				// the pool's free pages and temporary pages from
				// outside CMA.
				{Op: plan.OpScratchPages, File: f.Name, Label: "before", Checks: []plan.Check{{Key: "pages", Op: "==", Value: base},
					{Key: "in_scratch", Op: ">=", Value: 512, When: CapHugetlb}}},
				{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: 0x100, Expect: "ENOENT",
					ExpectByCap: []plan.CapExpect{{Cap: CapHugetlb, Expect: "ok"}}, Cite: citeHugetlbV3},
				{Op: plan.OpScratchPages, File: f.Name, Label: "after", Cite: "mm/gup.c memfd_pin_folios_populated() (series): FOLL_LONGTERM migrates folios out of CMA, which KHO scratch is, before they are preserved",
					Checks: []plan.Check{{Key: "pages", Op: "==", Value: base}, {Key: "in_scratch", Op: "==", Value: 0, When: CapHugetlb}}},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s0"},
				{Op: plan.OpRetrieve, Session: "s0", Token: 0x100, File: f.Name, Expect: "ENOENT", ExpectByCap: onNext},
				{Op: plan.OpVerify, File: f.Name, Expect: "skip", ExpectByCap: onNext},
				{Op: plan.OpFinish, Session: "s0", Cite: citeReuse},
			}},
		},
	}
}
