//go:build unix

package cli

import (
	"io"
	"os"
	"runtime"
	"syscall"
)

// pollable returns standard input as a file whose reads a deadline can end,
// so that Ctrl-C stops a scan blocked on a pipe. Go's os.Stdin is in blocking
// mode, where deadlines do not work; the descriptor is switched to
// non-blocking for the scan and back afterwards. Other readers are returned
// unchanged.
func pollable(r io.Reader) (io.Reader, func()) {
	f, ok := r.(*os.File)
	if !ok {
		return r, func() {}
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		return r, func() {}
	}
	nf := os.NewFile(uintptr(fd), f.Name())
	return nf, func() {
		_ = syscall.SetNonblock(fd, false)
		runtime.KeepAlive(nf) // its finalizer would close standard input
	}
}
