//go:build unix

package main

import "syscall"

// privateUmask makes every file the receiver creates its owner's alone.
func privateUmask() { syscall.Umask(0o077) }
