// Command imagefs-lab sets up and tears down a private containerd on a loop
// filesystem with a few small images, for demos of imagefs:
//
//	eval "$(sudo imagefs-lab up --dir /tmp/ifs-demo --fs xfs)"
//	sudo imagefs-lab down --dir /tmp/ifs-demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/imagefs/imagefs/internal/lab"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  imagefs-lab up --dir DIR [--fs ext4|xfs|btrfs|tmpfs] [--binary containerd-1.6|containerd-2.4]
  imagefs-lab down --dir DIR
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("imagefs-lab "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "lab directory (keep it short: it holds a unix socket)")
	var fstype, binary *string
	switch args[0] {
	case "up":
		fstype = fs.String("fs", "ext4", "filesystem for containerd's root: ext4, xfs, btrfs or tmpfs")
		binary = fs.String("binary", "containerd-1.6", "containerd build: containerd-1.6 or containerd-2.4")
	case "down":
	default:
		fmt.Fprintf(stderr, "imagefs-lab: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imagefs-lab %s: --dir is required and takes no other arguments\n%s", args[0], usage)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "imagefs-lab: must run as root (it mounts loop filesystems and runs containerd); re-run with sudo")
		return 1
	}

	var err error
	if args[0] == "down" {
		err = lab.Down(*dir)
	} else {
		err = up(*dir, *fstype, *binary, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imagefs-lab %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func up(dir, fstype, binary string, stdout, stderr io.Writer) error {
	b, err := lab.BinaryByName(binary)
	if err != nil {
		return err
	}
	// Ctrl-C during up cancels it; Up then tears down what it made.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := lab.Up(ctx, lab.UpOptions{
		Dir: dir, FSType: fstype, Binary: b,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return err
	}
	if len(s.Containerds) == 0 {
		return errors.New("no containerd recorded after up")
	}
	c := s.Containerds[0]
	// Results to stdout (eval-able), progress went to stderr.
	for _, kv := range [][2]string{
		{"CONTAINER_RUNTIME_ENDPOINT", c.Endpoint},
		{"IMAGE_SERVICE_ENDPOINT", c.Endpoint},
		{"IMAGEFS_LAB_SNAPSHOTTER_DIR", c.SnapshotterDir()},
		{"IMAGEFS_LAB_ROOT", c.Root},
		{"IMAGEFS_LAB_DIR", s.Dir},
	} {
		fmt.Fprintf(stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return nil
}

// shellQuote quotes s for sh unless it is made only of safe characters.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=,@", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
