// Package cluster is the cluster view of the kubelet's node filesystem
// stats: it lists the nodes, fetches each node's Summary through the API
// server (bounded concurrency, a deadline per node), and reduces each to one
// row: imagefs, nodefs and a split containerfs, the fields the kubelet left
// out, the distance to image GC's high threshold and to the eviction
// thresholds, and a status. One node that fails never fails the view: its
// row carries the error, classified as pkg/kubelet classifies it.
//
// Two sources: the kubelet's own Summary through the node proxy
// (SourceSummary), or the imagefs DaemonSet's exporter through the pod
// proxy (SourceExporter), which adds its doctor findings and falls back to
// the node proxy on a node without a running exporter.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/kubelet"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
)

// Sources of the per-node data.
const (
	// SourceSummary is the kubelet's Summary through the node proxy,
	// GET /api/v1/nodes/NODE/proxy/stats/summary (get on nodes/proxy).
	SourceSummary = "summary"
	// SourceExporter is the imagefs exporter pod on each node through the
	// pod proxy, GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/{stats/summary,doctor}
	// (get on pods/proxy in NS, list on pods in NS).
	SourceExporter = "exporter"
)

// Defaults of Options.
const (
	DefaultConcurrency = 16
	// DefaultTimeout bounds each node's fetch; a kubelet that needs longer
	// to build its Summary is unhealthy in its own right.
	DefaultTimeout = 5 * time.Second
	// DefaultListTimeout bounds the node (and pod) list.
	DefaultListTimeout = 60 * time.Second
	// DefaultNearPoints is how close, in percentage points of capacity, a
	// node may come to a threshold before it is near-threshold.
	DefaultNearPoints = 5
	// DefaultExporterNamespace, DefaultExporterSelector and
	// DefaultExporterPort locate the imagefs DaemonSet (deploy/).
	DefaultExporterNamespace = "imagefs"
	DefaultExporterSelector  = "app.kubernetes.io/name=imagefs"
	DefaultExporterPort      = 9847
	// listChunk is the page size of lists, as kubectl's --chunk-size.
	listChunk = 500
)

// Options shape a Collect.
type Options struct {
	// Selector is a label selector for the nodes; "" is every node.
	Selector string
	// Nodes, when set, are the node names to fetch instead of a list.
	Nodes []string
	// Concurrency bounds the fetches in flight; DefaultConcurrency if 0.
	Concurrency int
	// Timeout bounds each node's fetch; DefaultTimeout if 0.
	Timeout time.Duration
	// ListTimeout bounds the lists; DefaultListTimeout if 0.
	ListTimeout time.Duration
	// Settings are the thresholds assumed for every node; the kubelet
	// defaults (kubeletconfig.Defaults) if nil.
	Settings *kubeletconfig.Settings
	// NearPoints is the near-threshold margin in percentage points of
	// capacity; DefaultNearPoints if 0, no margin if negative.
	NearPoints float64
	// Source is SourceSummary ("" too) or SourceExporter.
	Source string
	// ExporterNamespace, ExporterSelector and ExporterPort locate the
	// exporter pods; the Default values if empty.
	ExporterNamespace string
	ExporterSelector  string
	ExporterPort      int
	// Progress, if set, is called with (0, total) once the nodes are
	// known and after each node; calls are serialized.
	Progress func(done, total int)
}

// ErrClusterUnreachable is Collect failing before any node: the client
// could not be built, or the nodes could not be listed. It wraps a
// *kubelet.Error whose Kind is one of pkg/kubelet's sentinels.
var ErrClusterUnreachable = errors.New("cannot list the cluster's nodes")

// ErrBadOptions is an Options value Collect cannot use.
var ErrBadOptions = errors.New("invalid options")

// Collect builds the cluster view. The error is nil when the nodes could
// be listed, however many of them failed; it wraps ErrClusterUnreachable
// otherwise, ErrBadOptions for bad options, or ctx's error when ctx ended
// (the report then holds the nodes done so far).
func Collect(ctx context.Context, cfg *rest.Config, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w: no client configuration", ErrBadOptions)
	}
	thresholds, err := o.Settings.Thresholds()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	c := &collector{o: o, cfg: rest.CopyConfig(cfg), thresholds: thresholds}
	// Each node's deadline is the context's; a rest.Config Timeout would
	// also be sent as ?timeout= and forwarded to the kubelet.
	c.nodeCfg = rest.CopyConfig(cfg)
	c.nodeCfg.Timeout = o.Timeout
	lc := rest.CopyConfig(cfg)
	lc.Timeout = 0
	lc.ContentType = "application/json"
	// Concurrency bounds the load; client-go's default 5 requests/s would
	// make the exporter's two pod-proxy requests per node crawl. (Each
	// kubelet.FromAPIServer call builds its own client, so node proxy
	// requests are never throttled either.)
	lc.QPS, lc.RateLimiter = -1, nil
	cs, err := kubernetes.NewForConfig(lc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClusterUnreachable, &kubelet.Error{URL: cfg.Host, Err: err})
	}
	c.cs = cs

	r := &Report{Source: o.Source, Selector: o.Selector, Thresholds: thresholdsOf(o.Settings, o.NearPoints)}
	var nodes []nodeRef
	if len(o.Nodes) > 0 {
		for _, n := range o.Nodes {
			nodes = append(nodes, nodeRef{name: n})
		}
	} else if nodes, err = c.listNodes(ctx); err != nil {
		return nil, err
	}
	if o.Source == SourceExporter {
		pods, err := c.exporterPods(ctx)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("cannot list the exporter pods (%v): every node's Summary is read through the node proxy", err))
		}
		c.pods = pods
	}
	r.Nodes = c.fetchAll(ctx, notReadyFirst(nodes))
	sortNodes(r.Nodes)
	r.Totals = totals(r.Nodes)
	return r, ctx.Err()
}

func (o *Options) defaults() error {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency < 0 {
		return fmt.Errorf("%w: concurrency %d must be positive", ErrBadOptions, o.Concurrency)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ListTimeout == 0 {
		o.ListTimeout = DefaultListTimeout
	}
	if o.Timeout < 0 || o.ListTimeout < 0 {
		return fmt.Errorf("%w: timeouts must be positive", ErrBadOptions)
	}
	switch {
	case o.NearPoints == 0:
		o.NearPoints = DefaultNearPoints
	case o.NearPoints < 0:
		o.NearPoints = 0
	}
	if o.Settings == nil {
		o.Settings = kubeletconfig.Defaults()
	}
	if err := o.Settings.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if _, err := labels.Parse(o.Selector); err != nil {
		return fmt.Errorf("%w: selector %q: %w", ErrBadOptions, o.Selector, err)
	}
	if _, err := labels.Parse(o.ExporterSelector); err != nil {
		return fmt.Errorf("%w: exporter selector %q: %w", ErrBadOptions, o.ExporterSelector, err)
	}
	switch o.Source {
	case "":
		o.Source = SourceSummary
	case SourceSummary, SourceExporter:
	default:
		return fmt.Errorf("%w: source %q (want %s or %s)", ErrBadOptions, o.Source, SourceSummary, SourceExporter)
	}
	if o.ExporterNamespace == "" {
		o.ExporterNamespace = DefaultExporterNamespace
	}
	if o.ExporterSelector == "" {
		o.ExporterSelector = DefaultExporterSelector
	}
	if o.ExporterPort == 0 {
		o.ExporterPort = DefaultExporterPort
	}
	return nil
}

type collector struct {
	o       Options
	cfg     *rest.Config
	nodeCfg *rest.Config
	cs      kubernetes.Interface
	pods    map[string]string // node name → exporter pod
	// thresholds are o.Settings.Thresholds(), parsed once.
	thresholds []kubeletconfig.Threshold
}

// nodeRef is a node to fetch with the conditions the view shows; they are
// "" when the node was named on the command line. Only these are kept of
// the listed Node: a real Node object carries its image list and is tens
// of KiB.
type nodeRef struct {
	name                string
	ready, diskPressure string
}

// listNodes lists the nodes in chunks, as kubectl does.
func (c *collector) listNodes(ctx context.Context) ([]nodeRef, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.ListTimeout)
	defer cancel()
	var out []nodeRef
	opts := metav1.ListOptions{LabelSelector: c.o.Selector, Limit: listChunk}
	for {
		list, err := c.cs.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrClusterUnreachable, listError(c.cfg, "/api/v1/nodes", c.o.Selector, err, c.o.ListTimeout))
		}
		for i := range list.Items {
			n := &list.Items[i]
			out = append(out, nodeRef{name: n.Name, ready: conditionOf(n, corev1.NodeReady), diskPressure: conditionOf(n, corev1.NodeDiskPressure)})
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

// fetchAll fetches every node with at most Concurrency in flight.
func (c *collector) fetchAll(ctx context.Context, nodes []nodeRef) []Node {
	out := make([]Node, len(nodes))
	var (
		next atomic.Int64
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
	)
	progress := func() {
		if c.o.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done++
		c.o.Progress(done, len(nodes))
	}
	if c.o.Progress != nil {
		c.o.Progress(0, len(nodes))
	}
	for range min(c.o.Concurrency, len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(nodes) {
					return
				}
				out[i] = c.fetch(ctx, nodes[i])
				progress()
			}
		}()
	}
	wg.Wait()
	return out
}

// fetch reads one node and reduces it to its row.
func (c *collector) fetch(ctx context.Context, ref nodeRef) Node {
	var (
		s      *statsapi.Summary
		doc    *doctor.Report
		err    error
		source = SourceSummary
		notes  []string
	)
	if ctx.Err() != nil {
		return errorRow(ref, source, &kubelet.Error{Node: ref.name, Err: ctx.Err()})
	}
	if pod, ok := c.pods[ref.name]; ok {
		source = SourceExporter
		s, doc, err = c.fromExporter(ctx, pod)
		if s == nil {
			notes = append(notes, fmt.Sprintf("exporter pod %s failed, kubelet Summary used: %s", pod, fetchError(err).short()))
			source = SourceSummary
		} else if err != nil {
			notes = append(notes, fmt.Sprintf("exporter pod %s: no doctor findings: %s", pod, fetchError(err).short()))
		}
	} else if c.o.Source == SourceExporter && c.pods != nil {
		notes = append(notes, "no running exporter pod, kubelet Summary used")
	}
	if s == nil {
		s, _, err = kubelet.FromAPIServer(ctx, c.nodeCfg, ref.name)
		if err != nil {
			row := errorRow(ref, source, err)
			row.Reasons = append(row.Reasons, notes...)
			return row
		}
	}
	row := analyze(ref, s, c.o.Settings, c.thresholds, c.o.NearPoints)
	row.Source = source
	row.Doctor = doc
	addDoctor(&row)
	row.Reasons = append(row.Reasons, notes...)
	return row
}

// notReadyFirst moves the nodes whose Ready condition is not True to the
// front: their kubelets are the likely ones to hold a worker for the whole
// timeout, and started first that wait overlaps the other fetches instead
// of trailing them (longest jobs first).
func notReadyFirst(nodes []nodeRef) []nodeRef {
	out := make([]nodeRef, 0, len(nodes))
	for _, n := range nodes {
		if n.ready != "" && n.ready != string(corev1.ConditionTrue) {
			out = append(out, n)
		}
	}
	for _, n := range nodes {
		if n.ready == "" || n.ready == string(corev1.ConditionTrue) {
			out = append(out, n)
		}
	}
	return out
}

// sortNodes orders by imagefs use% descending, unknown last, then name.
func sortNodes(nodes []Node) {
	sort.SliceStable(nodes, func(i, j int) bool {
		a, b := usePercent(nodes[i]), usePercent(nodes[j])
		if a != b {
			return a > b
		}
		return nodes[i].Name < nodes[j].Name
	})
}

func usePercent(n Node) int {
	if n.ImageFs == nil || n.ImageFs.UsePercent == nil {
		return -1
	}
	return *n.ImageFs.UsePercent
}

func totals(nodes []Node) Totals {
	t := Totals{Nodes: len(nodes)}
	for _, n := range nodes {
		switch n.Status {
		case StatusOK:
			t.OK++
		case StatusNear:
			t.NearThreshold++
		case StatusMissingCapacity:
			t.MissingCapacity++
		case StatusPressure:
			t.Pressure++
		case StatusUnreachable:
			t.Unreachable++
		}
	}
	return t
}
