// Command kubectl-imagefs is the kubectl plugin `kubectl imagefs`: every
// node's image filesystem, image GC and eviction headroom, from the
// kubelet's Summary API. See `kubectl imagefs --help`.
package main

import (
	"os"

	"golang.org/x/term"

	"github.com/imagefs/imagefs/internal/plugin"
)

func main() {
	os.Exit(plugin.Main(os.Args[1:], plugin.IO{
		Out:      os.Stdout,
		ErrOut:   os.Stderr,
		ErrIsTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}))
}
