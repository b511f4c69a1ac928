//go:build !linux

package source

import "os"

// growPipe does nothing here: only Linux lets a pipe's buffer grow.
func growPipe(*os.File) {}
