package bench

// HarnessDoc is what the harness itself costs, next to the kernel tree's
// own tools/testing/selftests/liveupdate/vmtest.sh flow, on one kernel.
type HarnessDoc struct {
	// Kernel is the variant the harness figures ran on.
	Kernel    string         `json:"kernel"`
	Catalogue *CatalogueCost `json:"catalogue,omitempty"`
	InTree    *InTreeCost    `json:"in_tree,omitempty"`
	// Ours are our scenarios comparable to the in-tree flow, each run
	// in a VM of its own.
	Ours []ScenarioCost `json:"ours,omitempty"`
}

// CatalogueCost is one `luotest run` of the default catalogue.
type CatalogueCost struct {
	Scenarios int     `json:"scenarios"`
	VMs       int     `json:"vms"`
	Parallel  int     `json:"parallel"`
	Pass      int     `json:"pass"`
	NotPass   int     `json:"not_pass"`
	WallS     float64 `json:"wall_s"`
	// Failures name scenarios that did not pass (the wall time still
	// counts them).
	Failures []string `json:"failures,omitempty"`
}

// InTreeCost is the kernel tree's vmtest.sh flow with a cached kernel:
// Prep builds the nolibc init, the test binary and the two cpio archives
// (mkinitrd), QEMU boots, kexecs and exits.
type InTreeCost struct {
	Test string `json:"test"`
	// Command is the QEMU command line, as vmtest.sh builds it.
	Command  string   `json:"command"`
	Runs     int      `json:"runs"`
	Failed   int      `json:"failed"`
	Failures []string `json:"failures,omitempty"`
	Prep     Stat     `json:"prep_s"`
	QEMU     Stat     `json:"qemu_s"`
	Total    Stat     `json:"total_s"`
	// Once is the one-off cost before the first run: the uAPI headers
	// and gen_init_cpio (vmtest.sh gets both from its kernel build).
	OnceS float64 `json:"once_s"`
}

// ScenarioCost is one of our scenarios run solo, repeatedly: initramfs
// assembly plus the VM, as the runner times it.
type ScenarioCost struct {
	Scenario string   `json:"scenario"`
	Runs     int      `json:"runs"`
	Failed   int      `json:"failed"`
	Failures []string `json:"failures,omitempty"`
	Wall     Stat     `json:"wall_s"`
	// VM is the VM alone (QEMU start to exit), the counterpart of
	// InTreeCost.QEMU.
	VM Stat `json:"vm_s"`
	// Ratio is Wall.Median / InTree.Total.Median and VMRatio
	// VM.Median / InTree.QEMU.Median (0 when unknown).
	Ratio   float64 `json:"ratio_to_in_tree,omitempty"`
	VMRatio float64 `json:"vm_ratio_to_in_tree,omitempty"`
}

// SetRatios fills every ScenarioCost.Ratio from the in-tree figure.
func (h *HarnessDoc) SetRatios() {
	if h.InTree == nil {
		return
	}
	for i := range h.Ours {
		if r, ok := Ratio(h.Ours[i].Wall, h.InTree.Total); ok {
			h.Ours[i].Ratio = r
		}
		if r, ok := Ratio(h.Ours[i].VM, h.InTree.QEMU); ok {
			h.Ours[i].VMRatio = r
		}
	}
}
