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

// RawIoctl issues r on fd (the device or a session) and returns the
// descriptor the kernel filled in, if any. The argument buffer is as large
// as the real struct plus slack, so an oversized size field never makes the
// kernel read past it.
func RawIoctl(fd int, r Raw) (int, error) {
	nr, ok := rawCmds[r.Cmd]
	if !ok {
		return -1, fmt.Errorf("raw ioctl: unknown command %q", r.Cmd)
	}
	if len(r.Name) > SessionNameLen {
		return -1, fmt.Errorf("raw ioctl: name is %d bytes, field holds %d", len(r.Name), SessionNameLen)
	}
	var buf [256]byte // zeroed slack beyond every struct
	p := unsafe.Pointer(&buf[0])
	size := r.Size
	outFD := func() int { return -1 }
	switch nr {
	case cmdCreateSession, cmdRetrieveSession:
		a := (*sessionArg)(p)
		if size == 0 {
			size = SizeSession
		}
		a.Size, a.FD = size, -1
		copy(a.Name[:], r.Name)
		outFD = func() int { return int(a.FD) }
	case cmdPreserveFD, cmdRetrieveFD:
		a := (*fdArg)(p)
		if size == 0 {
			size = SizeFD
		}
		a.Size, a.FD, a.Token = size, r.FD, r.Token
		if nr == cmdRetrieveFD {
			outFD = func() int { return int(a.FD) }
		}
	case cmdFinish:
		a := (*finishArg)(p)
		if size == 0 {
			size = SizeFinish
		}
		a.Size, a.Reserved = size, r.Reserved
	case cmdGetName:
		a := (*getNameArg)(p)
		if size == 0 {
			size = SizeGetName
		}
		a.Size, a.Reserved = size, r.Reserved
	}
	if r.Tail != 0 {
		buf[structSize(nr)] = r.Tail
	}
	if e := ioctl(fd, nr, p); e != 0 {
		return -1, &Error{Op: "raw " + r.Cmd, What: fmt.Sprintf("size %d reserved %d", size, r.Reserved), Errno: e}
	}
	return outFD(), nil
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
