// Command continuity-du prints github.com/containerd/continuity's
// fs.DiskUsage of each PATH as JSON: the function containerd v2.4.2's
// overlayfs snapshotter calls for a snapshot's usage. It is the reference
// peer of bench/du, built as its own binary so that its time and peak RSS
// are measured like the other peers'.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/continuity/fs"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: continuity-du PATH...")
		os.Exit(2)
	}
	var total fs.Usage
	for _, p := range os.Args[1:] {
		u, err := fs.DiskUsage(context.Background(), p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "continuity-du: %s: %v\n", p, err)
			os.Exit(1)
		}
		total.Size += u.Size
		total.Inodes += u.Inodes
	}
	json.NewEncoder(os.Stdout).Encode(map[string]int64{"size": total.Size, "inodes": total.Inodes})
}
