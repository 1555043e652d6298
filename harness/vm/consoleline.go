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
// vmtest's qemu.LogSerialByLine with RelativeTS does the same but counts
// from the first line, not from QEMU's start as the agent's events and
// the SysRq record do.
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

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimRight(w.buf.Next(i+1), "\r\n")))
	}
	return len(p), nil
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
