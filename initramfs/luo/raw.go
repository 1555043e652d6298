package luo

import (
	"fmt"
	"unsafe"
)

// Raw describes a hand-built LUO ioctl used to test the kernel's argument
// checking: a wrong size, a non-zero reserved field, a name without NUL.
type Raw struct {
	// Cmd is one of "create_session", "retrieve_session", "preserve_fd",
	// "retrieve_fd", "finish", "get_name".
	Cmd string
	// Size replaces the size field; 0 means the correct size.
	Size uint32
	// Reserved is written to the reserved field (finish, get_name).
	Reserved uint32
	// Name is copied into the name field as is, without adding a NUL
	// (session ioctls). At most SessionNameLen bytes.
	Name string
	// Tail, if non-zero, is written into the first byte after the
	// real struct (the kernel must refuse it with E2BIG when Size
	// covers it).
	Tail uint8
	// FD and Token fill the fd ioctls.
	FD    int32
	Token uint64
}

var rawCmds = map[string]uint8{
	"create_session":   cmdCreateSession,
	"retrieve_session": cmdRetrieveSession,
	"preserve_fd":      cmdPreserveFD,
	"retrieve_fd":      cmdRetrieveFD,
	"finish":           cmdFinish,
	"get_name":         cmdGetName,
}

// rawBufWords is the size of a raw ioctl's argument buffer in 64-bit
// words: room for every struct plus zeroed slack, so that an oversized
// size field never makes the kernel read past the buffer.
const rawBufWords = 32

// rawBuf is the argument buffer of a raw ioctl. It is made of uint64s so
// that it is 8-byte aligned, as the kernel's structs are (the token is an
// __aligned_u64); a byte array may start at any address.
type rawBuf [rawBufWords]uint64

func (b *rawBuf) ptr() unsafe.Pointer { return unsafe.Pointer(&b[0]) }

// bytes returns the buffer's memory as bytes.
func (b *rawBuf) bytes() []byte {
	return unsafe.Slice((*byte)(b.ptr()), len(b)*8)
}

// rawArg is a raw ioctl ready to be issued.
type rawArg struct {
	nr   uint8
	size uint32 // what the size field says
	buf  rawBuf
}

// encodeRaw builds the ioctl r describes.
func encodeRaw(r Raw) (*rawArg, error) {
	nr, ok := rawCmds[r.Cmd]
	if !ok {
		return nil, fmt.Errorf("raw ioctl: unknown command %q", r.Cmd)
	}
	if len(r.Name) > SessionNameLen {
		return nil, fmt.Errorf("raw ioctl: name is %d bytes, field holds %d", len(r.Name), SessionNameLen)
	}
	a := &rawArg{nr: nr, size: r.Size}
	if a.size == 0 {
		a.size = structSize(nr)
	}
	p := a.buf.ptr()
	switch nr {
	case cmdCreateSession, cmdRetrieveSession:
		s := (*sessionArg)(p)
		s.Size, s.FD = a.size, -1
		copy(s.Name[:], r.Name)
	case cmdPreserveFD, cmdRetrieveFD:
		s := (*fdArg)(p)
		s.Size, s.FD, s.Token = a.size, r.FD, r.Token
	case cmdFinish:
		s := (*finishArg)(p)
		s.Size, s.Reserved = a.size, r.Reserved
	case cmdGetName:
		s := (*getNameArg)(p)
		s.Size, s.Reserved = a.size, r.Reserved
	}
	if r.Tail != 0 {
		a.buf.bytes()[structSize(nr)] = r.Tail
	}
	return a, nil
}

// fd returns the descriptor the kernel filled in: the session of the
// session ioctls, the file of retrieve_fd; -1 for the others.
func (a *rawArg) fd() int {
	switch a.nr {
	case cmdCreateSession, cmdRetrieveSession:
		return int((*sessionArg)(a.buf.ptr()).FD)
	case cmdRetrieveFD:
		return int((*fdArg)(a.buf.ptr()).FD)
	}
	return -1
}

// RawIoctl issues r on fd (the device or a session) and returns the
// descriptor the kernel filled in, if any.
func RawIoctl(fd int, r Raw) (int, error) {
	a, err := encodeRaw(r)
	if err != nil {
		return -1, err
	}
	if e := ioctl(fd, a.nr, a.buf.ptr()); e != 0 {
		return -1, &Error{Op: "raw " + r.Cmd, What: fmt.Sprintf("size %d reserved %d", a.size, r.Reserved), Errno: e}
	}
	return a.fd(), nil
}

func structSize(nr uint8) uint32 {
	switch nr {
	case cmdCreateSession, cmdRetrieveSession:
		return SizeSession
	case cmdPreserveFD, cmdRetrieveFD:
		return SizeFD
	case cmdFinish:
		return SizeFinish
	}
	return SizeGetName
}
