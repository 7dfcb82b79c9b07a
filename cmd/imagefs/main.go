// Command imagefs reproduces and explains the kubelet's node filesystem
// stats. See `imagefs --help`.
package main

import (
	"os"

	"golang.org/x/term"

	"github.com/imagefs/imagefs/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.IO{
		In:       os.Stdin,
		Out:      os.Stdout,
		ErrOut:   os.Stderr,
		OutIsTTY: term.IsTerminal(int(os.Stdout.Fd())),
	}))
}
