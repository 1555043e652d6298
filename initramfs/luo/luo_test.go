package luo

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// The numbers below are the uAPI of include/uapi/linux/liveupdate.h in
// Linux 7.3: _IO(0xBA, nr) requests and the struct sizes the kernel checks.
// They stand in when no kernel tree is at hand; with one,
// TestBindingMatchesKernelHeader checks the binding against its header.
func TestRequestNumbers(t *testing.T) {
	for _, tc := range []struct {
		name string
		nr   uint8
		want uintptr
	}{
		{"LIVEUPDATE_IOCTL_CREATE_SESSION", cmdCreateSession, 0xBA00},
		{"LIVEUPDATE_IOCTL_RETRIEVE_SESSION", cmdRetrieveSession, 0xBA01},
		{"LIVEUPDATE_SESSION_PRESERVE_FD", cmdPreserveFD, 0xBA40},
		{"LIVEUPDATE_SESSION_RETRIEVE_FD", cmdRetrieveFD, 0xBA41},
		{"LIVEUPDATE_SESSION_FINISH", cmdFinish, 0xBA42},
		{"LIVEUPDATE_SESSION_GET_NAME", cmdGetName, 0xBA43},
	} {
		if got := Request(tc.nr); got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestStructSizes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uint32
	}{
		{"liveupdate_ioctl_create_session", SizeSession, 72},
		{"liveupdate_session_preserve_fd", SizeFD, 16},
		{"liveupdate_session_finish", SizeFinish, 8},
		{"liveupdate_session_get_name", SizeGetName, 72},
	} {
		if tc.got != tc.want {
			t.Errorf("sizeof(%s) = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

func TestErrorNamesIoctlAndErrno(t *testing.T) {
	err := error(&Error{Op: "LIVEUPDATE_SESSION_PRESERVE_FD", What: `session "a"`, Errno: unix.EBUSY})
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("errors.Is(EBUSY) = false for %v", err)
	}
	if got := ErrnoName(err); got != "EBUSY" {
		t.Errorf("ErrnoName = %q, want EBUSY", got)
	}
	want := `LIVEUPDATE_SESSION_PRESERVE_FD session "a": device or resource busy (EBUSY)`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestSessionNameLimit(t *testing.T) {
	if _, err := nameBytes(string(make([]byte, SessionNameLen-1))); err != nil {
		t.Errorf("63-byte name rejected: %v", err)
	}
	if _, err := nameBytes(string(make([]byte, SessionNameLen))); err == nil {
		t.Error("64-byte name accepted; it leaves no room for the NUL")
	}
}

func TestOpenMissingDevice(t *testing.T) {
	_, err := OpenPath("/nonexistent/liveupdate")
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("OpenPath(missing) = %v, want ENOENT", err)
	}
}

func TestRawIoctlRejectsUnknownCommand(t *testing.T) {
	if _, err := RawIoctl(-1, Raw{Cmd: "frobnicate"}); err == nil {
		t.Fatal("unknown raw command accepted")
	}
}
