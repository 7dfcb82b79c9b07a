// Package cli wires imagefs's commands: flags in, one clear sentence and an
// exit code out. It is the only package that writes to stdout and stderr.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/runtime"
	"github.com/imagefs/imagefs/pkg/stats"
)

// Exit codes, documented in the root command's help.
const (
	ExitOK      = 0
	ExitError   = 1 // nothing could be computed: runtime, mount table, …
	ExitUsage   = 2 // bad flags or arguments
	ExitPartial = 3 // computed, but the kubelet would omit or fail a filesystem
)

const exitCodesHelp = `Exit codes (stats and explain; doctor and pressure document their own 3 and 4):
  0  every filesystem resolved as the kubelet would resolve it
  1  nothing could be computed (runtime unreachable or hung, socket missing,
     permission denied, runtime without ImageFsInfo, unreadable mount table)
  2  usage error (unknown flag, bad --output or --timeout)
  3  computed, but the kubelet on this node would omit fields of, or fail,
     at least one filesystem (each reason is printed on stderr)`

// IO carries the streams a command writes to; tests substitute buffers.
type IO struct {
	In          io.Reader
	Out, ErrOut io.Writer
	// OutIsTTY enables colour and progress on a terminal.
	OutIsTTY bool
}

// GlobalOptions are the flags every command shares.
type GlobalOptions struct {
	RuntimeEndpoint string
	Timeout         time.Duration
	RootDir         string
	Output          string
	Mountinfo       string
	NodeName        string
	Verbose         bool
}

// usageError marks an error that is the user's invocation, exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// partialError means output was written but the kubelet would not report
// everything; the lines were already printed.
type partialError struct{ problems []string }

func (e partialError) Error() string {
	return fmt.Sprintf("%d filesystem problem(s)", len(e.problems))
}

// Main runs imagefs with args and returns the process exit code.
func Main(args []string, streams IO) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand(streams)
	argsAreUsageErrors(root)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, streams.ErrOut)
}

// NewRootCommand builds the imagefs command tree.
func NewRootCommand(streams IO) *cobra.Command {
	g := &GlobalOptions{}
	root := &cobra.Command{
		Use:   "imagefs",
		Short: "Reproduce and explain the kubelet's node filesystem stats (nodefs, imagefs, containerfs)",
		Long: `imagefs computes, on a Kubernetes node, the numbers the kubelet reports in
the Summary API as node.fs, node.runtime.imageFs and node.runtime.containerFs
(kubelet v1.37, cadvisor lib v0.60.5), from the same sources:

  usedBytes, inodesUsed, time    the runtime's CRI ImageFsInfo (image_filesystems[0])
  capacityBytes, availableBytes,  statfs of the partition cadvisor resolves the
  inodes, inodesFree              runtime's mountpoint (or --root-dir) to

It only reads: it never changes the runtime's state.

The runtime endpoint is taken from --runtime-endpoint, then
$CONTAINER_RUNTIME_ENDPOINT, then crictl's config ($CRI_CONFIG_FILE or
/etc/crictl.yaml), then the first of these sockets that exists:
  ` + fmt.Sprint(runtime.DefaultEndpoints) + `

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelWarn
			if g.Verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: level})))
			if g.Timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, got %s", g.Timeout)}
			}
			return nil
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringVar(&g.RuntimeEndpoint, "runtime-endpoint", "", "CRI endpoint, e.g. unix:///run/containerd/containerd.sock (default: see above)")
	pf.DurationVar(&g.Timeout, "timeout", runtime.DefaultTimeout, "deadline for each call to the runtime")
	pf.StringVar(&g.RootDir, "root-dir", stats.DefaultRootDir, "the kubelet's --root-dir; node.fs is the filesystem holding it")
	pf.StringVarP(&g.Output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&g.Mountinfo, "mountinfo", fsinfo.DefaultMountinfo, "mount table to build cadvisor's partition map from")
	pf.StringVar(&g.NodeName, "node-name", "", "node name for the Summary output (default: the hostname)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "log each step on stderr")

	root.AddCommand(newStatsCommand(g, streams))
	root.AddCommand(newExplainCommand(g, streams))
	root.AddCommand(newDoctorCommand(g, streams))
	root.AddCommand(newPressureCommand(g, streams))
	root.AddCommand(newGCCommand(g, streams))
	root.AddCommand(newServeCommand(g, streams))
	root.AddCommand(newImagesCommand(g, streams))
	root.AddCommand(newDuCommand(g, streams))
	return root
}

// checkOutput rejects an -o value the command cannot render.
func checkOutput(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	list := strings.Join(allowed, ", ")
	if n := len(allowed); n > 1 {
		list = strings.Join(allowed[:n-1], ", ") + " or " + allowed[n-1]
	}
	return usageError{fmt.Errorf("unknown --output %q: use %s", format, list)}
}

// exitCode prints err as one sentence and maps it to an exit code.
func exitCode(err error, errOut io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var partial partialError
	if errors.As(err, &partial) {
		return ExitPartial
	}
	var press pressureError
	if errors.As(err, &press) {
		return ExitPressure
	}
	var findings findingsError
	if errors.As(err, &findings) {
		if findings.worst == doctor.Fail {
			return ExitDoctorFail
		}
		return ExitDoctorWarn
	}
	fmt.Fprintf(errOut, "imagefs: %s\n", sentence(err))
	var usage usageError
	if errors.As(err, &usage) || errors.Is(err, runtime.ErrBadEndpoint) || isUnknownCommand(err) {
		return ExitUsage
	}
	return ExitError
}
