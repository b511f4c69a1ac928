//go:build unix

package source

import (
	"io"
	"io/fs"
	"syscall"
)

type fileID struct{ dev, ino uint64 }

// idOf identifies a directory, so that a walk through symbolic links
// enters each once.
func idOf(_ string, fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true //nolint:unconvert // types differ by platform
}

// openFile opens a file for reading with plain system calls.
func openFile(path string) (fdReader, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fdReader{}, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fdReader{fd: fd, path: path}, nil
	}
}

// fdReader reads a file descriptor; it can also tell the file's size.
type fdReader struct {
	fd   int
	path string
}

func (f fdReader) close() { _ = syscall.Close(f.fd) }

func (f fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(f.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f fdReader) size() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}
