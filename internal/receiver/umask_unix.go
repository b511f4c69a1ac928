//go:build unix

package receiver

import "syscall"

// privateUmask makes every file the receiver creates its owner's alone.
func privateUmask() { syscall.Umask(0o077) }
