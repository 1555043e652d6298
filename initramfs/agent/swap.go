package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Swap header layout (include/linux/swap.h, union swap_header): the magic
// ends the first page; version, last_page, nr_badpages, a UUID and a
// volume label follow 1024 bytes of boot space.
const (
	swapMagic          = "SWAPSPACE2"
	swapVersionOff     = 1024
	swapLastPageOff    = 1028
	swapNrBadpagesOff  = 1032
	swapUUIDOff        = 1036
	swapVolumeOff      = 1052
	swapVolumeLen      = 16
	swapMinPages       = 10 // what mkswap insists on
	swapHeaderVersion1 = 1
)

// SwapHeader returns the first page of a swap area of size bytes, as
// mkswap writes it: version 1, last_page = size/pageSize - 1, no bad
// pages, the volume label "luotest".
func SwapHeader(pageSize int, size int64) ([]byte, error) {
	if pageSize < 4096 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("page size %d", pageSize)
	}
	pages := size / int64(pageSize)
	if pages < swapMinPages {
		return nil, fmt.Errorf("swap area of %d bytes: fewer than %d pages", size, swapMinPages)
	}
	if pages-1 > 1<<32-1 {
		return nil, fmt.Errorf("swap area of %d bytes: last_page does not fit 32 bits", size)
	}
	h := make([]byte, pageSize)
	binary.NativeEndian.PutUint32(h[swapVersionOff:], swapHeaderVersion1)
	binary.NativeEndian.PutUint32(h[swapLastPageOff:], uint32(pages-1))
	binary.NativeEndian.PutUint32(h[swapNrBadpagesOff:], 0)
	copy(h[swapUUIDOff:swapUUIDOff+16], "memfd-luo-swap\x00\x01")
	copy(h[swapVolumeOff:swapVolumeOff+swapVolumeLen], "luotest")
	copy(h[pageSize-len(swapMagic):], swapMagic)
	return h, nil
}

// ParseSize parses a byte count: a number with an optional K, M or G
// (powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q is not a positive byte count", s)
	}
	return v * mult, nil
}

// zramDevice returns a zram device without a disk size: zram0 (built in,
// the driver creates one) or a new one from /sys/class/zram-control.
func zramDevice() (string, error) {
	b, err0 := os.ReadFile("/sys/block/zram0/disksize")
	if err0 == nil && strings.TrimSpace(string(b)) == "0" {
		return "zram0", nil
	}
	if id, err := os.ReadFile("/sys/class/zram-control/hot_add"); err == nil {
		return "zram" + strings.TrimSpace(string(id)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("adding a zram device: %w", err)
	}
	if err0 == nil {
		return "", fmt.Errorf("zram0 is in use (disksize %s) and there is no /sys/class/zram-control", strings.TrimSpace(string(b)))
	}
	return "", fmt.Errorf("no zram device (/sys/block/zram0: %v): a kernel without CONFIG_ZRAM", err0)
}

// swapon runs an OpSwapon: a zram device of size bytes, a swap header,
// swapon(2).
func swapon(size string, sys System) result {
	n, err := ParseSize(size)
	if err != nil {
		return result{err: fmt.Errorf("plan error: %w", err)}
	}
	if _, err := os.Stat("/proc/swaps"); err != nil {
		return result{err: fmt.Errorf("no /proc/swaps: a kernel without CONFIG_SWAP: %w", err)}
	}
	name, err := zramDevice()
	if err != nil {
		return result{err: err}
	}
	if err := os.WriteFile("/sys/block/"+name+"/disksize", []byte(strconv.FormatInt(n, 10)), 0); err != nil {
		return result{err: fmt.Errorf("setting the disk size of %s to %d: %w", name, n, err)}
	}
	dev := "/dev/" + name
	var fd int
	for start := time.Now(); ; {
		fd, err = unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil || !errors.Is(err, unix.ENOENT) || time.Since(start) > 5*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return result{err: fmt.Errorf("opening %s: %w", dev, err)}
	}
	hdr, err := SwapHeader(os.Getpagesize(), n)
	if err == nil {
		_, err = unix.Pwrite(fd, hdr, 0)
		if err == nil {
			err = unix.Fsync(fd)
		}
	}
	unix.Close(fd)
	if err != nil {
		return result{err: fmt.Errorf("writing the swap header to %s: %w", dev, err)}
	}
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return result{err: err}
	}
	if _, _, e := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return result{err: fmt.Errorf("swapon(%s): %w", dev, e)}
	}
	mi, err := sys.Meminfo()
	if err != nil {
		return result{err: err}
	}
	return result{
		values: map[string]int64{"swap_total_kb": mi["SwapTotal"], "swap_free_kb": mi["SwapFree"]},
		detail: fmt.Sprintf("%s: %d bytes of zram, SwapTotal %d kB", dev, n, mi["SwapTotal"]),
	}
}

// sink keeps the compiler from dropping the reads that map pages.
var sink byte

// pageout runs an OpPageout on e of f (the whole file if e is empty): it
// maps the range shared and read-only, reads one byte of every page that
// holds data (holes are never touched: reading one through a shared
// mapping would allocate it), and asks the kernel to page the mapping out.
func (f *memfile) pageout(e plan.Extent, sys System) result {
	st, err := f.stat()
	if err != nil {
		return result{err: fmt.Errorf("fstat(%s): %w", f.name, err)}
	}
	pg := int64(os.Getpagesize())
	if e.Len == 0 {
		e = plan.Extent{Off: 0, Len: st.Size}
	}
	start := e.Off &^ (pg - 1)
	end := min((e.End()+pg-1)&^(pg-1), (st.Size+pg-1)&^(pg-1))
	if end <= start {
		return result{err: fmt.Errorf("plan error: pageout of %s: %+v is beyond its size %d", f.name, e, st.Size)}
	}
	segs, err := f.dataSegmentsKeepPos(start, end, pg)
	if err != nil {
		return result{err: err}
	}
	before, err := sys.Meminfo()
	if err != nil {
		return result{err: err}
	}
	m, unmap, err := mapFaultSafe(f.fd, plan.Extent{Off: start, Len: end - start}, unix.PROT_READ)
	if err != nil {
		return result{err: fmt.Errorf("mmap(%s, %#x+%#x): %w", f.name, start, end-start, err)}
	}
	defer unmap()
	var sum byte
	pages := int64(0)
	err = catchFault(fmt.Sprintf("reading the data pages of %s", f.name), func() {
		for _, s := range segs {
			for o := s.Off; o < s.End(); o += pg {
				sum += m[o-start]
				pages++
			}
		}
	})
	if err != nil {
		return result{err: err}
	}
	sink += sum
	addr := uintptr(unsafe.Pointer(&m[0]))
	mapped := smapsOf(addr)
	if err := unix.Madvise(m, unix.MADV_PAGEOUT); err != nil {
		return result{err: fmt.Errorf("madvise(%s, MADV_PAGEOUT): %w", f.name, err)}
	}
	after, err := sys.Meminfo()
	if err != nil {
		return result{err: err}
	}
	out := smapsOf(addr)
	used := func(mi map[string]int64) int64 { return mi["SwapTotal"] - mi["SwapFree"] }
	vals := map[string]int64{
		"pages":              pages,
		"resident_before_kb": mapped["Rss"],
		"resident_kb":        out["Rss"],
		"swapped_kb":         out["Swap"],
		"swap_used_delta_kb": used(after) - used(before),
		"swap_total_kb":      after["SwapTotal"],
	}
	return result{values: vals, detail: fmt.Sprintf("%s %#x+%#x: %d data pages, %d kB went to swap (mapping's Swap; SwapTotal-SwapFree %+d kB), %d kB still resident of %d kB mapped",
		f.name, start, end-start, pages, out["Swap"], vals["swap_used_delta_kb"], out["Rss"], mapped["Rss"])}
}

// dataSegmentsKeepPos is dataSegments that puts the file position back:
// SEEK_DATA and SEEK_HOLE move it, and it is part of what the file must
// carry over.
func (f *memfile) dataSegmentsKeepPos(start, end, pg int64) ([]plan.Extent, error) {
	pos, err := unix.Seek(f.fd, 0, unix.SEEK_CUR)
	if err != nil {
		return nil, fmt.Errorf("lseek(%s, 0, SEEK_CUR): %w", f.name, err)
	}
	segs, err := f.dataSegments(start, end, pg)
	if _, serr := unix.Seek(f.fd, pos, unix.SEEK_SET); serr != nil && err == nil {
		err = fmt.Errorf("restoring the position of %s: %w", f.name, serr)
	}
	return segs, err
}

// dataSegments returns the page-rounded ranges of [start, end) that hold
// data (SEEK_DATA/SEEK_HOLE).
func (f *memfile) dataSegments(start, end, pg int64) ([]plan.Extent, error) {
	var out []plan.Extent
	for off := start; off < end; {
		d, err := unix.Seek(f.fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lseek(%s, %#x, SEEK_DATA): %w", f.name, off, err)
		}
		if d >= end {
			break
		}
		h, err := unix.Seek(f.fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("lseek(%s, %#x, SEEK_HOLE): %w", f.name, d, err)
		}
		lo, hi := d&^(pg-1), min((h+pg-1)&^(pg-1), end)
		out = append(out, plan.Extent{Off: lo, Len: hi - lo})
		off = hi
	}
	return out, nil
}

// smapsOf returns the fields (kB) of the mapping starting at addr in
// /proc/self/smaps; empty if it cannot be read.
func smapsOf(addr uintptr) map[string]int64 {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return map[string]int64{}
	}
	return ParseSmaps(b, uint64(addr))
}

// ParseSmaps returns the "Key: N kB" fields of the mapping that starts at
// addr in the text of /proc/<pid>/smaps.
func ParseSmaps(b []byte, addr uint64) map[string]int64 {
	out := map[string]int64{}
	want := strconv.FormatUint(addr, 16) + "-"
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if !strings.HasSuffix(fs[0], ":") {
			// A mapping's header: "start-end perms offset dev inode [path]".
			if in {
				break
			}
			in = strings.HasPrefix(line, want)
			continue
		}
		if in && len(fs) >= 2 {
			if v, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
				out[strings.TrimSuffix(fs[0], ":")] = v
			}
		}
	}
	return out
}
