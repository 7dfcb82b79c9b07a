//go:build !linux

// Command du benchmarks imagefs du on Linux only.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "bench/du: %v\n", fmt.Errorf("not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported))
	os.Exit(1)
}
