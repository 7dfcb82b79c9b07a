// Package plugin is the kubectl plugin `kubectl imagefs` (binary
// kubectl-imagefs): the cluster view of every node's image filesystem.
// Flags in, one table or JSON document out, and an exit code; pkg/cluster
// does the work.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imagefs/imagefs/pkg/cluster"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
)

// Exit codes, documented in the help.
const (
	ExitOK    = 0 // every node ok
	ExitError = 1 // the cluster could not be asked: kubeconfig, API server, list nodes
	ExitUsage = 2 // bad flags or arguments
	ExitNotOK = 3 // at least one node is not ok (near threshold, missing capacity, pressure, unreachable)
)

// IO carries the streams the command uses; tests substitute buffers.
type IO struct {
	Out, ErrOut io.Writer
	// ErrIsTTY draws a progress bar on ErrOut.
	ErrIsTTY bool
}

// usageError is the user's invocation: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// notOKError is a view written with nodes that are not ok: exit 3.
type notOKError struct{ totals cluster.Totals }

func (e notOKError) Error() string {
	return fmt.Sprintf("%d of %d nodes not ok", e.totals.Nodes-e.totals.OK, e.totals.Nodes)
}

// Main runs the plugin with args and returns the exit code.
func Main(args []string, streams IO) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand(streams)
	root.SetArgs(args)
	return exitCode(root.ExecuteContext(ctx), streams.ErrOut)
}

type options struct {
	config        *genericclioptions.ConfigFlags
	selector      string
	concurrency   int
	output        string
	source        string
	gcHigh        int32
	evictionHard  string
	kubeletConfig string
	near          float64
	exporterNS    string
	noProgress    bool
}

const long = `kubectl imagefs shows, for every node of the cluster, the image filesystem
the kubelet reports in its Summary API (node.runtime.imageFs), how far it is
from image garbage collection and from the eviction thresholds, and whether
the kubelet left out the fields that make image GC fail ("invalid capacity 0
on image filesystem"). It only reads.

It lists the nodes (-l to select), then fetches each node's Summary through
the API server's node proxy,
  GET /api/v1/nodes/NODE/proxy/stats/summary
at most --concurrency at a time, each bounded by --request-timeout. A node
that fails is listed with its error; it never fails the view.

Columns:
  IMAGEFS SIZE, USED, AVAILABLE  imageFs capacityBytes, usedBytes (the
                                 runtime's own count), availableBytes
  USE%          image GC's figure, 100 - floor(available*100/capacity)
  INODES FREE   imageFs inodesFree / inodes
  TO GC HIGH    image GC high threshold minus USE%, in percentage points;
                0 or less: image GC deletes unused images now
  TO EVICTION   the eviction threshold closest to being met: free share
                minus threshold, in percentage points of capacity, and its
                signal; negative: met, the kubelet reports DiskPressure
  NODEFS USE%   the same figure for node.fs
  NOTE          why the status is not ok (-o wide: every reason, the error's
                hint, containerfs when it differs from imagefs, nodefs, the
                fields the kubelet left out and the Node's DiskPressure
                condition)
Rows are sorted by USE%, highest first; the last line counts the nodes by
status. -o json carries every number and each threshold resolved in bytes.

Status:
  ok                none of the below
  near-threshold    within --near points of an eviction threshold or of the
                    image GC high threshold, or image GC runs now
  missing-capacity  imageFs (or node.fs) has no capacityBytes: image GC fails
                    with "invalid capacity 0 on image filesystem" and those
                    eviction signals are skipped
  pressure          an eviction threshold is met, or the Node's DiskPressure
                    condition is True
  unreachable       no Summary: the kubelet failed it (HTTP 500), the API
                    server could not reach the kubelet, timeout, node gone

Thresholds are the kubelet v1.37 defaults (evictionHard nodefs.available<10%,
nodefs.inodesFree<5%, imagefs.available<15%, imagefs.inodesFree<5%; image GC
high 85%) unless --kubelet-config, --eviction-hard or
--image-gc-high-threshold say otherwise; they are held against every node
with the kubelet's arithmetic (a percentage of capacity truncated to an
integer, met when it exceeds what is available).

--source exporter reads each node's numbers from the imagefs DaemonSet
instead (pods labelled app.kubernetes.io/name=imagefs in --exporter-namespace,
port 9847) through the pod proxy, and adds its doctor findings; a node
without a running exporter pod falls back to the kubelet's Summary.

Permissions: list nodes; get nodes/proxy; with --source exporter also list
pods and get pods/proxy in the exporter's namespace.

Exit codes:
  0  every node ok (also when no node matches)
  1  the cluster could not be asked: no kubeconfig, API server unreachable,
     credentials rejected, no permission to list nodes
  2  usage error (unknown flag, bad -o, --source, selector or threshold)
  3  at least one node is not ok (near-threshold, missing-capacity,
     pressure or unreachable)`

const examples = `  # Every node, fullest image filesystem first
  kubectl imagefs

  # The GPU pool, everything the view knows about each node
  kubectl imagefs -l pool=gpu -o wide

  # Two nodes by name
  kubectl imagefs node-1 node-2

  # Nodes whose kubelet left out imageFs capacity, with jq
  kubectl imagefs -o json | jq -r '.nodes[] | select(.status == "missing-capacity") | .name'

  # A cluster whose kubelets run with evictionHard imagefs.available<20%
  kubectl imagefs --eviction-hard 'imagefs.available<20%,nodefs.available<10%'

  # Doctor findings from the imagefs DaemonSet
  kubectl imagefs --source exporter -o wide`

// NewRootCommand builds the plugin's command.
func NewRootCommand(streams IO) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true)}
	// The view is cluster-wide: a namespace means nothing, and the
	// discovery cache is never used.
	o.config.Namespace, o.config.CacheDir = nil, nil
	o.config.Timeout = ptr(cluster.DefaultTimeout.String())

	cmd := &cobra.Command{
		Use:           "kubectl imagefs [NODE...]",
		Short:         "Image filesystem, image GC and eviction headroom of every node, from the kubelet's Summary API",
		Long:          long,
		Example:       examples,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), cmd, o, args, streams)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	own := pflag.NewFlagSet("imagefs", pflag.ContinueOnError)
	own.StringVarP(&o.selector, "selector", "l", "", "Label selector for the nodes (e.g. -l pool=gpu,kubernetes.io/os=linux)")
	own.StringVarP(&o.output, "output", "o", cluster.FormatTable, "Output format: "+strings.Join(cluster.Formats, ", "))
	own.IntVar(&o.concurrency, "concurrency", cluster.DefaultConcurrency, "Nodes fetched at once")
	own.StringVar(&o.source, "source", cluster.SourceSummary, "Where each node's numbers come from: summary (the kubelet, through the node proxy) or exporter (the imagefs DaemonSet, through the pod proxy)")
	own.StringVar(&o.exporterNS, "exporter-namespace", cluster.DefaultExporterNamespace, "Namespace of the imagefs DaemonSet, for --source exporter")
	own.Int32Var(&o.gcHigh, "image-gc-high-threshold", 85, "The kubelet's imageGCHighThresholdPercent to measure against")
	own.StringVar(&o.evictionHard, "eviction-hard", "", "The kubelet's --eviction-hard to measure against, e.g. 'imagefs.available<20%,nodefs.available<10%'; as in the kubelet, it replaces the defaults (default: the kubelet v1.37 defaults)")
	own.StringVar(&o.kubeletConfig, "kubelet-config", "", "A KubeletConfiguration file whose eviction and image GC settings to measure against (--eviction-hard and --image-gc-high-threshold override it)")
	own.Float64Var(&o.near, "near", cluster.DefaultNearPoints, "Margin in percentage points of capacity under which a node is near-threshold")
	own.BoolVar(&o.noProgress, "no-progress", false, "Never draw the progress bar (it is drawn on stderr only when stderr is a terminal)")
	own.BoolP("help", "h", false, "Show this help")

	conn := pflag.NewFlagSet("kubeconfig", pflag.ContinueOnError)
	o.config.AddFlags(conn)
	if fl := conn.Lookup("request-timeout"); fl != nil {
		fl.Usage = "How long to wait for each node's Summary (e.g. 5s, 1m; a bare number is seconds); 0 means the default"
	}
	cmd.Flags().AddFlagSet(own)
	cmd.Flags().AddFlagSet(conn)
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		_, err := fmt.Fprintf(c.OutOrStderr(), "Usage:\n  %s\n\nExamples:\n%s\n\nOptions:\n%s\nConnection options (as kubectl's):\n%s",
			c.UseLine(), c.Example, own.FlagUsages(), conn.FlagUsages())
		return err
	})
	return cmd
}

func ptr[T any](v T) *T { return &v }

func run(ctx context.Context, cmd *cobra.Command, o *options, nodes []string, streams IO) error {
	if !contains(cluster.Formats, o.output) {
		return usageError{fmt.Errorf("-o %q: want one of %s", o.output, strings.Join(cluster.Formats, ", "))}
	}
	if o.source != cluster.SourceSummary && o.source != cluster.SourceExporter {
		return usageError{fmt.Errorf("--source %q: want %s or %s", o.source, cluster.SourceSummary, cluster.SourceExporter)}
	}
	if o.concurrency < 1 {
		return usageError{fmt.Errorf("--concurrency %d: want at least 1", o.concurrency)}
	}
	if o.near < 0 {
		return usageError{fmt.Errorf("--near %g: want 0 or more points", o.near)}
	}
	if len(nodes) > 0 && o.selector != "" {
		return usageError{errors.New("pass node names or -l, not both")}
	}
	settings, err := o.settings(cmd)
	if err != nil {
		return usageError{err}
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}

	co := cluster.Options{
		Selector:          o.selector,
		Nodes:             nodes,
		Concurrency:       o.concurrency,
		Timeout:           cfg.Timeout,
		Settings:          settings,
		NearPoints:        o.near,
		Source:            o.source,
		ExporterNamespace: o.exporterNS,
	}
	if o.near == 0 {
		co.NearPoints = -1 // no margin; Options reads 0 as unset
	}
	var bar *progressBar
	if streams.ErrIsTTY && !o.noProgress {
		bar = newProgressBar(streams.ErrOut)
		co.Progress = bar.update
	}
	r, err := cluster.Collect(ctx, cfg, co)
	bar.clear()
	switch {
	case errors.Is(err, cluster.ErrBadOptions):
		return usageError{err}
	case ctx.Err() != nil:
		return errors.New("interrupted")
	case err != nil:
		return err
	}
	if len(r.Nodes) == 0 && o.output != cluster.FormatJSON {
		if o.selector != "" {
			fmt.Fprintf(streams.ErrOut, "No nodes match the selector %q.\n", o.selector)
		} else {
			fmt.Fprintln(streams.ErrOut, "No nodes found.")
		}
		return nil
	}
	if err := cluster.Render(streams.Out, r, o.output); err != nil {
		return err
	}
	if !r.Totals.AllOK() {
		return notOKError{r.Totals}
	}
	return nil
}

// settings are the kubelet defaults, then --kubelet-config, then the
// threshold flags, as the kubelet layers its file and flags.
func (o *options) settings(cmd *cobra.Command) (*kubeletconfig.Settings, error) {
	var args []string
	if o.kubeletConfig != "" {
		args = append(args, "--config="+o.kubeletConfig)
	}
	if cmd.Flags().Changed("eviction-hard") {
		args = append(args, "--eviction-hard="+o.evictionHard)
	}
	s, err := kubeletconfig.FromCmdline(args, "kubectl imagefs")
	if err != nil {
		return nil, err
	}
	if cmd.Flags().Changed("image-gc-high-threshold") {
		s.ImageGCHighThresholdPercent = o.gcHigh
		s.Sources["imageGCHighThresholdPercent"] = "flag --image-gc-high-threshold"
		// The view never uses the low threshold; keep it valid.
		s.ImageGCLowThresholdPercent = min(s.ImageGCLowThresholdPercent, o.gcHigh)
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("--image-gc-high-threshold: %w", err)
		}
	}
	return s, nil
}

// restConfig loads the kubeconfig as kubectl does; a failure is exit 1.
func (o *options) restConfig() (*rest.Config, error) {
	cfg, err := o.config.ToRESTConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		return nil, errors.New("no kubeconfig: pass --kubeconfig, set $KUBECONFIG or create ~/.kube/config (in a pod, its service account is used)")
	case err != nil:
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// exitCode prints err as one sentence and maps it to an exit code.
func exitCode(err error, errOut io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var notOK notOKError
	if errors.As(err, &notOK) {
		return ExitNotOK
	}
	var usage usageError
	if errors.As(err, &usage) || isUnknownFlagOrCommand(err) {
		fmt.Fprintf(errOut, "kubectl imagefs: %v\nSee 'kubectl imagefs --help'.\n", err)
		return ExitUsage
	}
	fmt.Fprintf(errOut, "kubectl imagefs: %v\n", err)
	return ExitError
}

func isUnknownFlagOrCommand(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") || strings.HasPrefix(s, "unknown shorthand flag")
}

// progressBar draws "[=====     ] 312/1000 nodes" on a terminal, at most
// every 100ms.
type progressBar struct {
	w    io.Writer
	last time.Time
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w} }

func (b *progressBar) update(done, total int) {
	if done != total && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 30
	fill := 0
	if total > 0 {
		fill = done * width / total
	}
	fmt.Fprintf(b.w, "\r\x1b[K[%s%s] %s/%d nodes", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), strconv.Itoa(done), total)
}

func (b *progressBar) clear() {
	if b != nil {
		fmt.Fprint(b.w, "\r\x1b[K")
	}
}
