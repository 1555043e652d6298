package agent

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/pattern"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// chunk is the I/O size for writing and verifying.
const chunk = 1 << 20

// memfile is an open memfd of the plan.
type memfile struct {
	name string
	fd   int
}

func (a *Agent) createMemfd(spec *plan.File) result {
	fd, err := unix.MemfdCreate(spec.Name, int(spec.Flags))
	if err != nil {
		return result{err: fmt.Errorf("memfd_create(%q, %#x): %w", spec.Name, spec.Flags, err)}
	}
	f := &memfile{name: spec.Name, fd: fd}
	a.files[spec.Name] = f
	if spec.Mode != nil {
		if err := unix.Fchmod(fd, *spec.Mode); err != nil {
			return result{err: fmt.Errorf("fchmod(%s, %#o): %w", spec.Name, *spec.Mode, err)}
		}
	}
	if err := unix.Ftruncate(fd, spec.Size); err != nil {
		return result{err: fmt.Errorf("ftruncate(%s, %d): %w", spec.Name, spec.Size, err)}
	}
	for _, e := range spec.Fallocated {
		if err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, e.Off, e.Len); err != nil {
			return result{err: fmt.Errorf("fallocate(%s, %+v): %w", spec.Name, e, err)}
		}
	}
	for _, e := range spec.DataExtents() {
		if err := f.writePattern(e, spec.Seed, spec.Write); err != nil {
			return result{err: err}
		}
	}
	if spec.Seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, int(spec.Seals)); err != nil {
			return result{err: fmt.Errorf("F_ADD_SEALS(%s, %#x): %w", spec.Name, spec.Seals, err)}
		}
	}
	if _, err := unix.Seek(fd, spec.Pos, 0); err != nil {
		return result{err: fmt.Errorf("lseek(%s, %d): %w", spec.Name, spec.Pos, err)}
	}
	st, _ := f.stat()
	seals, _ := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	return result{values: map[string]int64{
		"blocks": st.Blocks, "mode": int64(st.Mode & 0o7777), "seals": int64(seals),
	}}
}

func (f *memfile) stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(f.fd, &st)
	return st, err
}

// corruptHandover arms the kernel's test hook: the next freeze of f's
// inode writes its handover data corrupted in the way class names.
func corruptHandover(f *memfile, class string) result {
	st, err := f.stat()
	if err != nil {
		return result{err: fmt.Errorf("fstat %s: %w", f.name, err)}
	}
	line := fmt.Sprintf("%d %s", st.Ino, class)
	if err := os.WriteFile(plan.CorruptHookPath, []byte(line), 0); err != nil {
		return result{err: fmt.Errorf("arming the corruption hook (%s) with %q: %w", plan.CorruptHookPath, line, err)}
	}
	return result{detail: fmt.Sprintf("%s (inode %d) will be corrupted at freeze: %s", f.name, st.Ino, class)}
}

// writePattern writes the seed's pattern over e, with pwrite or through a
// shared mapping.
func (f *memfile) writePattern(e plan.Extent, seed uint64, mode plan.WriteMode) error {
	if mode == plan.WriteMmap {
		return f.writeMmap(e, seed)
	}
	buf := make([]byte, min(chunk, e.Len))
	for off := e.Off; off < e.End(); {
		n := min(int64(len(buf)), e.End()-off)
		pattern.Fill(buf[:n], seed, off)
		w, err := unix.Pwrite(f.fd, buf[:n], off)
		if err != nil {
			return fmt.Errorf("pwrite(%s, %d bytes at %#x): %w", f.name, n, off, err)
		}
		off += int64(w)
	}
	return nil
}

func (f *memfile) writeMmap(e plan.Extent, seed uint64) error {
	pg := int64(os.Getpagesize())
	// hugetlb mappings need huge-page alignment; map from a 1 GiB
	// aligned start is overkill, so align to the file's block size.
	st, err := f.stat()
	if err != nil {
		return err
	}
	align := max(pg, int64(st.Blksize))
	start := e.Off &^ (align - 1)
	end := (e.End() + align - 1) &^ (align - 1)
	m, unmap, err := mapFaultSafe(f.fd, plan.Extent{Off: start, Len: end - start}, unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		return fmt.Errorf("mmap(%s, %#x+%#x): %w", f.name, start, end-start, err)
	}
	defer unmap()
	return catchFault(fmt.Sprintf("writing %s %#x+%#x through a shared mapping", f.name, e.Off, e.Len), func() {
		pattern.Fill(m[e.Off-start:e.End()-start], seed, e.Off)
	})
}

// flipByte inverts the byte at off: the verifier's self-check.
func (f *memfile) flipByte(off int64) error {
	b := make([]byte, 1)
	if _, err := unix.Pread(f.fd, b, off); err != nil {
		return fmt.Errorf("pread(%s, %#x): %w", f.name, off, err)
	}
	b[0] ^= 0xff
	if _, err := unix.Pwrite(f.fd, b, off); err != nil {
		return fmt.Errorf("pwrite(%s, %#x): %w", f.name, off, err)
	}
	return nil
}

// verify checks size, position, content and (when the plan states them)
// seals, mode and writability of a retrieved file.
//
// The extents of racers (OpRaceStart) are checked against the racers'
// sweep order instead of the model, except where a later write covered
// them.
func (f *memfile) verify(spec *plan.File, model *pattern.Model, races []*raceRegion) result {
	st, err := f.stat()
	if err != nil {
		return result{err: fmt.Errorf("fstat(%s): %w", f.name, err)}
	}
	seals, _ := unix.FcntlInt(uintptr(f.fd), unix.F_GET_SEALS, 0)
	pos, err := unix.Seek(f.fd, 0, 1)
	if err != nil {
		return result{err: fmt.Errorf("lseek(%s, 0, SEEK_CUR): %w", f.name, err)}
	}
	vals := map[string]int64{
		"size": st.Size, "pos": pos, "blocks": st.Blocks,
		"mode": int64(st.Mode & 0o7777), "seals": int64(seals),
	}
	var problems []string
	if st.Size != spec.Size {
		problems = append(problems, fmt.Sprintf("size %d, want %d", st.Size, spec.Size))
	}
	if pos != spec.Pos {
		problems = append(problems, fmt.Sprintf("position %d, want %d", pos, spec.Pos))
	}
	if spec.ExpectSeals != nil && uint32(seals) != *spec.ExpectSeals {
		problems = append(problems, fmt.Sprintf("seals %#x, want %#x", seals, *spec.ExpectSeals))
	}
	if spec.ExpectMode != nil && uint32(st.Mode&0o7777) != *spec.ExpectMode {
		problems = append(problems, fmt.Sprintf("mode %#o, want %#o", st.Mode&0o7777, *spec.ExpectMode))
	}
	for _, rg := range races {
		rs, problem := f.checkRace(rg, model)
		vals[rg.name+"_gen"] = rs.Gen
		vals[rg.name+"_progress_pages"] = rs.Progress * 8 / int64(os.Getpagesize())
		if problem != "" {
			problems = append(problems, problem)
		}
	}
	dataBytes, desc, err := f.verifyContent(min(st.Size, spec.Size), model, raceSkips(races))
	// SEEK_DATA moved the position; a file preserved again for the
	// next hop must carry the position it came with.
	if _, serr := unix.Seek(f.fd, pos, 0); serr != nil && err == nil {
		err = fmt.Errorf("restoring position of %s: %w", f.name, serr)
	}
	vals["data_bytes"] = dataBytes
	if err != nil {
		return result{err: err, values: vals}
	}
	if desc != "" {
		problems = append(problems, desc)
	}
	if spec.ExpectWritable {
		if err := f.flipByte(0); err != nil {
			problems = append(problems, "not writable: "+err.Error())
		} else {
			_ = f.flipByte(0)
		}
	}
	if len(problems) > 0 {
		return result{mismatch: true, detail: fmt.Sprintf("%s: %v", f.name, problems), values: vals}
	}
	return result{detail: fmt.Sprintf("%s: %d bytes, %d data bytes verified", f.name, st.Size, dataBytes), values: vals}
}

// verifyContent compares the file with the model. Ranges the file reports
// as holes (SEEK_DATA/SEEK_HOLE) are not read: a hole reads as zeros, so
// only the model is checked there. Bytes in skip are not compared. It
// returns the bytes of data the file holds (the sum of its data segments)
// and a description of any mismatch.
func (f *memfile) verifyContent(size int64, model *pattern.Model, skip []plan.Extent) (int64, string, error) {
	got := make([]byte, chunk)
	want := make([]byte, chunk)
	var ms []pattern.Mismatch
	total := 0
	var dataBytes int64
	for off := int64(0); off < size; {
		// Is off in a hole? SEEK_DATA returns the next data offset.
		next, err := unix.Seek(f.fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			next = size
		} else if err != nil {
			return dataBytes, "", fmt.Errorf("lseek(%s, %#x, SEEK_DATA): %w", f.name, off, err)
		}
		if next > off {
			holeEnd := min(next, size)
			if modelHasData(model, off, holeEnd) {
				// Data was expected here but the file has a hole.
				for o := off; o < holeEnd; o += chunk {
					n := min(chunk, holeEnd-o)
					model.Expected(want[:n], o)
					clear(got[:n])
					skipBytes(got[:n], want[:n], o, skip)
					m, t := pattern.Compare(got[:n], want[:n], o, 8-len(ms))
					ms, total = append(ms, m...), total+t
				}
			}
			off = holeEnd
			continue
		}
		// Data from off up to the next hole; read it a chunk at a time.
		// Ask for the hole once per data segment: SEEK_HOLE walks the
		// page cache up to the hole, so asking per chunk is quadratic
		// in the segment length.
		hole, err := unix.Seek(f.fd, off, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		for segEnd := min(hole, size); off < segEnd; {
			end := min(off+chunk, segEnd)
			n := end - off
			r, err := unix.Pread(f.fd, got[:n], off)
			if err != nil {
				return dataBytes, "", fmt.Errorf("pread(%s, %d bytes at %#x): %w", f.name, n, off, err)
			}
			if int64(r) != n {
				return dataBytes, "", fmt.Errorf("pread(%s, %d bytes at %#x): short read of %d", f.name, n, off, r)
			}
			dataBytes += n
			model.Expected(want[:n], off)
			skipBytes(got[:n], want[:n], off, skip)
			m, t := pattern.Compare(got[:n], want[:n], off, 8-len(ms))
			ms, total = append(ms, m...), total+t
			off = end
		}
	}
	if total > 0 {
		return dataBytes, pattern.Summary(ms, total), nil
	}
	return dataBytes, "", nil
}

// skipBytes makes the bytes of want at file offset off that fall in skip
// equal to got's, so that comparing them finds no difference there.
func skipBytes(got, want []byte, off int64, skip []plan.Extent) {
	end := off + int64(len(want))
	for _, e := range skip {
		lo, hi := max(off, e.Off), min(end, e.End())
		if lo < hi {
			copy(want[lo-off:hi-off], got[lo-off:hi-off])
		}
	}
}

func modelHasData(m *pattern.Model, lo, hi int64) bool {
	for _, l := range m.Layers {
		if l.Off < hi && l.Off+l.Len > lo {
			return true
		}
	}
	return false
}

// otherFile opens a non-memfd file of the given kind for negative tests.
// Its errors are setup failures, not outcomes: they carry no errno.
func otherFile(kind string) (int, func(), error) {
	fd, cleanup, err := openOther(kind)
	if err != nil {
		return -1, nil, fmt.Errorf("setting up a %s to preserve: %v", kind, err)
	}
	return fd, cleanup, nil
}

func openOther(kind string) (int, func(), error) {
	switch kind {
	case "pipe":
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return -1, nil, err
		}
		return p[0], func() { unix.Close(p[0]); unix.Close(p[1]) }, nil
	case "socket":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, nil, err
		}
		return fd, func() { unix.Close(fd) }, nil
	case "tmpfs":
		dir, err := os.MkdirTemp("/tmp", "luotest")
		if err != nil {
			return -1, nil, err
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
			return -1, nil, fmt.Errorf("mounting tmpfs: %w", err)
		}
		fd, err := unix.Open(dir+"/file", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			unix.Unmount(dir, 0)
			return -1, nil, err
		}
		return fd, func() { unix.Close(fd); unix.Unmount(dir, unix.MNT_DETACH) }, nil
	}
	return -1, nil, fmt.Errorf("plan error: unknown other file kind %q", kind)
}
