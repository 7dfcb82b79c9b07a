// Command imagefs-gentree writes a reproducible synthetic containerd
// overlayfs snapshotter tree (<out>/snapshots/<N>/fs/...) for tests and
// benchmarks of imagefs du. See package gentree for what it contains.
//
//	imagefs-gentree --out /var/tmp/tree --entries 1000000 --seed 1
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/imagefs/imagefs/pkg/analyze/walk/gentree"
)

func main() {
	var o gentree.Options
	out := flag.String("out", "", "directory to create the tree in (must not exist or be empty)")
	flag.IntVar(&o.Entries, "entries", 100000, "names to create under snapshots/*/fs (e.g. 100000 or 1000000)")
	flag.Uint64Var(&o.Seed, "seed", 1, "random seed: the same seed makes the same tree")
	flag.IntVar(&o.Layers, "layers", 40, "number of snapshots")
	flag.IntVar(&o.LargeFiles, "large-files", 3, "number of large sparse files (1, 2, 4 GiB apparent)")
	flag.IntVar(&o.Workers, "workers", 0, "layers generated in parallel (0: 2×GOMAXPROCS); does not change the tree")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: imagefs-gentree --out DIR [--entries N] [--seed N]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	m, err := gentree.Generate(*out, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "imagefs-gentree: %v\n", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	fmt.Printf("%s\n", b)
	fmt.Fprintf(os.Stderr, "imagefs-gentree: %d names in %s (%.1fs)\n", m.Counts.Names, *out, time.Since(start).Seconds())
}
