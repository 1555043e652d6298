package agent

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
	"golang.org/x/sys/unix"
)

// KHOScratchDir is where KHO lists the scratch areas the next kernel boots
// from (CONFIG_KEXEC_HANDOVER_DEBUGFS).
const KHOScratchDir = "/sys/kernel/debug/kho/out"

// physRange is a physical address range [start, end).
type physRange struct{ start, end uint64 }

// readScratch reads the scratch areas from dir: scratch_phys and
// scratch_len, one hexadecimal number per line, area by area; from 7.4,
// which renamed KHO scratch to KHO bootmem, bootmem_phys and bootmem_len.
func readScratch(dir string) ([]physRange, error) {
	read := func(name string) ([]uint64, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		var out []uint64
		for _, f := range strings.Fields(string(b)) {
			v, err := strconv.ParseUint(f, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", filepath.Join(dir, name), f)
			}
			out = append(out, v)
		}
		return out, nil
	}
	prefix := "scratch"
	if _, err := os.Stat(filepath.Join(dir, "scratch_phys")); os.IsNotExist(err) {
		if _, err := os.Stat(filepath.Join(dir, "bootmem_phys")); err == nil {
			prefix = "bootmem"
		}
	}
	phys, err := read(prefix + "_phys")
	if err != nil {
		return nil, fmt.Errorf("reading the KHO scratch areas (CONFIG_KEXEC_HANDOVER_DEBUGFS?): %w", err)
	}
	lens, err := read(prefix + "_len")
	if err != nil {
		return nil, fmt.Errorf("reading the KHO scratch areas: %w", err)
	}
	if len(phys) != len(lens) || len(phys) == 0 {
		return nil, fmt.Errorf("%s: %d addresses and %d lengths", dir, len(phys), len(lens))
	}
	out := make([]physRange, len(phys))
	for i := range phys {
		out[i] = physRange{phys[i], phys[i] + lens[i]}
	}
	return out, nil
}

// inRanges reports whether addr lies in one of rs.
func inRanges(rs []physRange, addr uint64) bool {
	for _, r := range rs {
		if addr >= r.start && addr < r.end {
			return true
		}
	}
	return false
}

// pagemapPFN decodes a /proc/PID/pagemap entry: the page frame number and
// whether the page is present (bit 63; the PFN is bits 0-54, zero without
// CAP_SYS_ADMIN).
func pagemapPFN(entry uint64) (uint64, bool) {
	return entry & (1<<55 - 1), entry&(1<<63) != 0
}

// scratchPages runs an OpScratchPages: it maps File shared and read-only,
// reads one byte of each of its data pages (holes are found with
// SEEK_DATA, so that none is faulted in; hugetlbfs has no SEEK_DATA and
// reports the whole file as data, so use it on dense files there), looks
// their frames up in /proc/self/pagemap and counts the ones inside the
// KHO scratch areas listed in dir. It reports pages and in_scratch.
func (f *memfile) scratchPages(dir string) result {
	scratch, err := readScratch(dir)
	if err != nil {
		return result{err: err}
	}
	st, err := f.stat()
	if err != nil {
		return result{err: fmt.Errorf("fstat(%s): %w", f.name, err)}
	}
	pg := int64(os.Getpagesize())
	end := (st.Size + pg - 1) &^ (pg - 1)
	if end == 0 {
		return result{values: map[string]int64{"pages": 0, "in_scratch": 0}}
	}
	segs, err := f.dataSegmentsKeepPos(0, end, pg)
	if err != nil {
		return result{err: err}
	}
	m, unmap, err := mapFaultSafe(f.fd, plan.Extent{Off: 0, Len: end}, unix.PROT_READ)
	if err != nil {
		return result{err: fmt.Errorf("mmap(%s): %w", f.name, err)}
	}
	defer unmap()
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return result{err: err}
	}
	defer pm.Close()
	base := uintptr(unsafe.Pointer(&m[0]))
	var sum byte
	err = catchFault(fmt.Sprintf("reading the data pages of %s", f.name), func() {
		for _, s := range segs {
			for o := s.Off; o < s.End(); o += pg {
				sum += m[o]
			}
		}
	})
	if err != nil {
		return result{err: err}
	}
	// One pagemap read per data segment: 8 bytes per page.
	var pages, in int64
	for _, s := range segs {
		buf := make([]byte, s.Len/pg*8)
		at := int64(base+uintptr(s.Off)) / pg * 8
		if _, err := pm.ReadAt(buf, at); err != nil {
			return result{err: fmt.Errorf("reading /proc/self/pagemap at %#x: %w", at, err)}
		}
		for i := 0; i < len(buf); i += 8 {
			pfn, present := pagemapPFN(binary.LittleEndian.Uint64(buf[i:]))
			if !present || pfn == 0 {
				return result{err: fmt.Errorf("page %#x of %s: no frame in pagemap (present %v)", s.Off+int64(i/8)*pg, f.name, present)}
			}
			pages++
			if inRanges(scratch, pfn*uint64(pg)) {
				in++
			}
		}
	}
	sink += sum
	return result{values: map[string]int64{"pages": pages, "in_scratch": in}}
}
