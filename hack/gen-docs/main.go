// Command gen-docs writes docs/commands/*.md from imagefs's command tree,
// so the reference pages always say what --help says.
//
//	go run ./hack/gen-docs [docs/commands]
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra/doc"

	"github.com/imagefs/imagefs/internal/cli"
)

func main() {
	dir := "docs/commands"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root := cli.NewRootCommand(cli.IO{In: os.Stdin, Out: io.Discard, ErrOut: io.Discard})
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
