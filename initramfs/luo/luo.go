// Package luo is the Go binding of the Live Update Orchestrator uAPI
// (include/uapi/linux/liveupdate.h, Linux 7.3). It is the only package of
// memfd-luo that issues /dev/liveupdate ioctls. Its tests compare the
// structs and ioctl numbers with the header of the kernel trees under test
// (uapi_test.go).
//
// Descriptors are plain ints, never *os.File: a finalizer closing a session
// fd would silently unpreserve everything in it.
package luo

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DevicePath is the LUO character device.
const DevicePath = "/dev/liveupdate"

// SessionNameLen is LIVEUPDATE_SESSION_NAME_LENGTH, including the NUL.
const SessionNameLen = 64

// ioctlType is LIVEUPDATE_IOCTL_TYPE.
const ioctlType = 0xBA

// Commands. LUO ioctls are _IO(0xBA, nr): no size or direction bits; the
// struct carries its own size in its first u32.
const (
	cmdCreateSession   = 0x00
	cmdRetrieveSession = 0x01
	cmdPreserveFD      = 0x40
	cmdRetrieveFD      = 0x41
	cmdFinish          = 0x42
	cmdGetName         = 0x43
)

// Request returns the ioctl request number of LUO command nr.
func Request(nr uint8) uintptr { return uintptr(ioctlType<<8 | uint32(nr)) }

// Wire structures, laid out exactly as the uAPI header.
type (
	sessionArg struct { // liveupdate_ioctl_{create,retrieve}_session
		Size uint32
		FD   int32
		Name [SessionNameLen]byte
	}
	fdArg struct { // liveupdate_session_{preserve,retrieve}_fd
		Size  uint32
		FD    int32
		Token uint64
	}
	finishArg struct { // liveupdate_session_finish
		Size     uint32
		Reserved uint32
	}
	getNameArg struct { // liveupdate_session_get_name
		Size     uint32
		Reserved uint32
		Name     [SessionNameLen]byte
	}
)

// Struct sizes, as the kernel expects them in the size field.
const (
	SizeSession = uint32(unsafe.Sizeof(sessionArg{}))
	SizeFD      = uint32(unsafe.Sizeof(fdArg{}))
	SizeFinish  = uint32(unsafe.Sizeof(finishArg{}))
	SizeGetName = uint32(unsafe.Sizeof(getNameArg{}))
)

// Error is a failed LUO call. It unwraps to the unix.Errno.
type Error struct {
	Op    string // ioctl or call name, e.g. "LIVEUPDATE_SESSION_PRESERVE_FD"
	What  string // the object, e.g. `session "vm0"`
	Errno unix.Errno
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %v (%s)", e.Op, e.What, e.Errno, ErrnoName(e.Errno))
}

func (e *Error) Unwrap() error { return e.Errno }

// ErrnoName returns the symbolic name of an errno ("ENOENT").
func ErrnoName(err error) string {
	var en unix.Errno
	if !errors.As(err, &en) {
		return ""
	}
	if en == 0 {
		return "ok"
	}
	if n := unix.ErrnoName(en); n != "" {
		return n
	}
	return fmt.Sprintf("errno%d", int(en))
}

// callError is the error of a failed system call other than an ioctl: an
// *Error when err is an errno (as the unix package returns), else err
// wrapped with what was being done.
func callError(op, what string, err error) error {
	var en unix.Errno
	if errors.As(err, &en) {
		return &Error{Op: op, What: what, Errno: en}
	}
	return fmt.Errorf("%s %s: %w", op, what, err)
}

func ioctl(fd int, nr uint8, arg unsafe.Pointer) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), Request(nr), uintptr(arg))
	return e
}

// Device is an open /dev/liveupdate.
type Device struct{ fd int }

// Open opens the LUO device. ENOENT means the kernel lacks LIVEUPDATE or
// was booted without liveupdate=on; EBUSY means another opener holds it.
func Open() (*Device, error) { return OpenPath(DevicePath) }

// OpenPath opens a LUO device node at path.
func OpenPath(path string) (*Device, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, callError("open", path, err)
	}
	return &Device{fd: fd}, nil
}

// FD returns the device descriptor.
func (d *Device) FD() int { return d.fd }

// Close closes the device.
func (d *Device) Close() error { return unix.Close(d.fd) }

func nameBytes(name string) ([SessionNameLen]byte, error) {
	var b [SessionNameLen]byte
	if len(name) >= SessionNameLen {
		return b, fmt.Errorf("session name %q is %d bytes; the limit is %d", name, len(name), SessionNameLen-1)
	}
	copy(b[:], name)
	return b, nil
}

func (d *Device) session(nr uint8, op, name string) (*Session, error) {
	nb, err := nameBytes(name)
	if err != nil {
		return nil, &Error{Op: op, What: fmt.Sprintf("session %q", name), Errno: unix.EINVAL}
	}
	arg := sessionArg{Size: SizeSession, FD: -1, Name: nb}
	if e := ioctl(d.fd, nr, unsafe.Pointer(&arg)); e != 0 {
		return nil, &Error{Op: op, What: fmt.Sprintf("session %q", name), Errno: e}
	}
	return &Session{fd: int(arg.FD), name: name}, nil
}

// CreateSession creates an outgoing session.
func (d *Device) CreateSession(name string) (*Session, error) {
	return d.session(cmdCreateSession, "LIVEUPDATE_IOCTL_CREATE_SESSION", name)
}

// RetrieveSession retrieves an incoming session preserved by the previous
// kernel.
func (d *Device) RetrieveSession(name string) (*Session, error) {
	return d.session(cmdRetrieveSession, "LIVEUPDATE_IOCTL_RETRIEVE_SESSION", name)
}

// Session is a LUO session descriptor. Closing it unpreserves an outgoing
// session and finishes an incoming one.
type Session struct {
	fd   int
	name string
}

// NewSession wraps an existing session descriptor.
func NewSession(fd int, name string) *Session { return &Session{fd: fd, name: name} }

// FD returns the session descriptor.
func (s *Session) FD() int { return s.fd }

// Name returns the name the session was created or retrieved with.
func (s *Session) Name() string { return s.name }

func (s *Session) what() string { return fmt.Sprintf("session %q", s.name) }

// Close closes the session descriptor.
func (s *Session) Close() error {
	if err := unix.Close(s.fd); err != nil {
		return callError("close", s.what(), err)
	}
	return nil
}

// PreserveFD preserves fd in the session under token.
func (s *Session) PreserveFD(fd int, token uint64) error {
	arg := fdArg{Size: SizeFD, FD: int32(fd), Token: token}
	if e := ioctl(s.fd, cmdPreserveFD, unsafe.Pointer(&arg)); e != 0 {
		return &Error{Op: "LIVEUPDATE_SESSION_PRESERVE_FD", What: fmt.Sprintf("%s fd %d token %#x", s.what(), fd, token), Errno: e}
	}
	return nil
}

// RetrieveFD retrieves the file preserved under token and returns a new
// descriptor for it.
func (s *Session) RetrieveFD(token uint64) (int, error) {
	arg := fdArg{Size: SizeFD, FD: -1, Token: token}
	if e := ioctl(s.fd, cmdRetrieveFD, unsafe.Pointer(&arg)); e != 0 {
		return -1, &Error{Op: "LIVEUPDATE_SESSION_RETRIEVE_FD", What: fmt.Sprintf("%s token %#x", s.what(), token), Errno: e}
	}
	return int(arg.FD), nil
}

// Finish finishes an incoming session: the kernel releases what was not
// retrieved and the retrieved files become ordinary files.
func (s *Session) Finish() error {
	arg := finishArg{Size: SizeFinish}
	if e := ioctl(s.fd, cmdFinish, unsafe.Pointer(&arg)); e != 0 {
		return &Error{Op: "LIVEUPDATE_SESSION_FINISH", What: s.what(), Errno: e}
	}
	return nil
}

// GetName asks the kernel for the session's name.
func (s *Session) GetName() (string, error) {
	arg := getNameArg{Size: SizeGetName}
	if e := ioctl(s.fd, cmdGetName, unsafe.Pointer(&arg)); e != 0 {
		return "", &Error{Op: "LIVEUPDATE_SESSION_GET_NAME", What: s.what(), Errno: e}
	}
	n := 0
	for n < len(arg.Name) && arg.Name[n] != 0 {
		n++
	}
	return string(arg.Name[:n]), nil
}
