//go:build bench

// Command floor is the benchmark's floor: it reads every file under a
// directory on all cores and searches each for "AKIA", and nothing else. No
// scanner that reads every file can be faster than this on the same machine.
package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floor DIR")
		os.Exit(2)
	}
	paths := make(chan string, 1024)
	var hits, nbytes atomic.Int64
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 0, 1<<20)
			for p := range paths {
				f, err := os.Open(p)
				if err != nil {
					continue
				}
				buf = buf[:0]
				for {
					if len(buf) == cap(buf) {
						buf = append(buf, 0)[:len(buf)]
					}
					n, err := f.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+n]
					if err != nil {
						break
					}
				}
				f.Close()
				nbytes.Add(int64(len(buf)))
				hits.Add(int64(bytes.Count(buf, []byte("AKIA"))))
			}
		})
	}
	filepath.WalkDir(os.Args[1], func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths <- p
		}
		return nil
	})
	close(paths)
	wg.Wait()
	fmt.Printf("%d bytes, %d AKIA\n", nbytes.Load(), hits.Load())
}
