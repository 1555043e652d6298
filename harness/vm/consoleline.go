package vm

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// lineWriter is the serial output vmtest copies QEMU's stdout and stderr
// to: it cuts the bytes into lines, writes each to the console log with
// the host time since start, and hands it to line.
//
// vmtest's qemu.LogSerialByLine with RelativeTS does much the same, but
// counts from the first line, not from QEMU's start as the agent's events
// and the SysRq record do, and a line longer than 64 KiB stops its
// scanner, which leaves QEMU's output pipe unread: vmtest's VM.Wait then
// never returns, not even once its context has ended. lineWriter cuts such
// a line at maxLine instead.
type lineWriter struct {
	start time.Time
	out   io.Writer
	line  func(host time.Duration, line string)

	mu  sync.Mutex
	buf bytes.Buffer
}

func newLineWriter(start time.Time, out io.Writer, line func(time.Duration, string)) *lineWriter {
	return &lineWriter{start: start, out: out, line: line}
}

// maxLine bounds a console line: longer output without a newline is cut
// into lines this long.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		b := w.buf.Bytes()
		i := bytes.IndexByte(b, '\n')
		switch {
		case i >= 0 && len(bytes.TrimRight(b[:i], "\r")) <= maxLine:
			w.emit(string(bytes.TrimRight(w.buf.Next(i+1), "\r\n")))
		case w.buf.Len() > maxLine:
			w.emit(string(w.buf.Next(maxLine)))
		default:
			return len(p), nil
		}
	}
}

func (w *lineWriter) emit(line string) {
	host := time.Since(w.start)
	fmt.Fprintf(w.out, "[host %9.3f] %s\n", host.Seconds(), line)
	w.line(host, line)
}

// Flush emits a trailing partial line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(strings.TrimRight(w.buf.String(), "\r\n"))
		w.buf.Reset()
	}
}

// Close is called by vmtest when the VM is done: it emits a trailing
// partial line. The log file is the caller's to close.
func (w *lineWriter) Close() error {
	w.Flush()
	return nil
}
