package source

import (
	"os"

	"golang.org/x/sys/unix"
)

const pipeSize = 1 << 20

// growPipe enlarges a pipe's buffer where the system allows; failing that,
// the pipe keeps its size.
// It goes through SyscallConn, as f.Fd would put the pipe in blocking mode:
// then every one of git's small writes would wake a blocked thread, which
// costs a third more time than the poller's coalesced wake-ups.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}
