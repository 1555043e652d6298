package scenario

import "github.com/memfd-luo/memfd-luo/initramfs/plan"

// Capabilities about the serialization format (agent.DetectCaps).
const (
	// CapABIKnob: /sys/module/memfd_luo/parameters/abi exists.
	CapABIKnob = "abi-knob"
	// CapABIV3: the policy was "v3" when the agent started, so files
	// preserved without touching it are memfd-v3.
	CapABIV3 = "abi:v3"
	// CapMemfdV3: the kernel reads memfd-v3 (features token).
	CapMemfdV3 = "memfd-v3"
)

const (
	citeABIKnob     = "mm/memfd_luo.c (series): memfd_luo.abi= takes v2 (the default) or v3; other values -EINVAL; stock 7.3 has no such parameter (ENOENT)"
	citeV2Mode      = "memfd-v2 has no mode field: a retrieved memfd gets the default mode 0777 (include/linux/kho/abi/memfd.h)"
	citeV3Mode      = "memfd-v3 carries i_mode & 0777 (struct memfd_luo_v3_ser.mode)"
	citeNoV3Handler = "kernel/liveupdate/luo_file.c luo_file_deserialize(): no handler for 'memfd-v3' fails the whole deserialization; luo_open() then returns -EIO"
)

// modeKept: a memfd chmod'ed to 0600 keeps that mode where the format
// carries it (memfd-v3) and comes back 0777 where it does not.
func modeKept() *Scenario {
	s := single("mode-0600", "memfd with mode 0600 and no seals: memfd-v3 keeps the mode, memfd-v2 restores 0777",
		plan.File{Name: "md0", Flags: plan.MFDAllowSeal, Size: 3 * MiB, Seed: 70, Mode: u32(0o600), ExpectWritable: true})
	s.verifyChecks = map[string][]plan.Check{"md0": {
		{Key: "mode", Op: "==", Value: 0o600, When: prev(CapABIV3)},
		{Key: "mode", Op: "==", Value: 0o777, When: "!" + prev(CapABIV3)},
	}}
	return s
}

// abiMixed switches memfd_luo.abi= between two preservations of one
// session, so one kexec hands over a memfd-v2 and a memfd-v3 file; the
// next kernel must read both. It also checks that the knob refuses a
// value it does not know. Solo: it changes a global policy, which would
// change what other scenarios in a shared VM send.
func abiMixed() *Scenario {
	files := []plan.File{
		{Name: "v2f", Flags: plan.MFDAllowSeal, Size: 5 * MiB, Seed: 71, Pos: 77, Mode: u32(0o640)},
		{Name: "v3f", Flags: plan.MFDAllowSeal, Size: 6*MiB + 3, Seed: 72, Pos: 99, Mode: u32(0o640),
			Extents: []plan.Extent{{Off: 0, Len: MiB}, {Off: 4 * MiB, Len: 2*MiB + 3}}},
	}
	knob := []plan.CapExpect{{Cap: CapABIKnob, Expect: "ok"}}
	// A kernel with the knob sent a memfd-v3 file: a next kernel
	// without memfd-v3 (stock) cannot open any session.
	v3Sent := prev(CapABIKnob)
	openNext := []plan.CapExpect{{Cap: CapMemfdV3, Expect: "ok"}, {Cap: v3Sent, Expect: "EIO"}}
	afterOpen := []plan.CapExpect{{Cap: CapMemfdV3, Expect: "ok"}, {Cap: v3Sent, Expect: "skip"}}
	knobEINVAL := []plan.CapExpect{{Cap: CapABIKnob, Expect: "EINVAL"}}
	return &Scenario{
		Name:        "abi-mixed",
		Description: "memfd_luo.abi= switched between two preserves: one session carries a memfd-v2 and a memfd-v3 file (stock: no knob, both memfd-v2)",
		Files:       files,
		Tags:        []string{TagSolo},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpSetParam, Path: "memfd_luo/abi", Data: "v4", Expect: "ENOENT", ExpectByCap: knobEINVAL, Cite: citeABIKnob},
				{Op: plan.OpCreateSession, Session: "s0"},
				{Op: plan.OpSetParam, Path: "memfd_luo/abi", Data: "v2", Expect: "ENOENT", ExpectByCap: knob, Cite: citeABIKnob},
				{Op: plan.OpCreateMemfd, File: "v2f"},
				{Op: plan.OpPreserve, Session: "s0", File: "v2f", Token: 1},
				{Op: plan.OpSetParam, Path: "memfd_luo/abi", Data: "v3", Expect: "ENOENT", ExpectByCap: knob, Cite: citeABIKnob},
				{Op: plan.OpCreateMemfd, File: "v3f"},
				{Op: plan.OpPreserve, Session: "s0", File: "v3f", Token: 2},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s0", ExpectByCap: openNext, Cite: citeNoV3Handler},
				{Op: plan.OpRetrieve, Session: "s0", Token: 1, File: "v2f", ExpectByCap: afterOpen},
				{Op: plan.OpRetrieve, Session: "s0", Token: 2, File: "v3f", ExpectByCap: afterOpen},
				{Op: plan.OpVerify, File: "v2f", Cite: citeV2Mode, ExpectByCap: afterOpen, Checks: []plan.Check{
					{Key: "mode", Op: "==", Value: 0o777}}},
				{Op: plan.OpVerify, File: "v3f", Cite: citeV3Mode, ExpectByCap: afterOpen, Checks: []plan.Check{
					{Key: "mode", Op: "==", Value: 0o640, When: prev(CapABIKnob)},
					{Key: "mode", Op: "==", Value: 0o777, When: "!" + prev(CapABIKnob)}}},
				{Op: plan.OpFinish, Session: "s0", ExpectByCap: afterOpen},
			}},
		},
	}
}
