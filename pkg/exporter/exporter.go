// Package exporter serves imagefs's collections to Prometheus: a
// background loop collects every interval, and scrapes are answered from
// the last good collection, so a scrape never waits on the runtime or on a
// hung mount. The Prometheus collector emits const metrics of that
// snapshot (node_exporter's style); /stats/summary, /explain and /doctor
// serve the same snapshot as JSON.
package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagefs/imagefs/pkg/analyze/doctor"
	"github.com/imagefs/imagefs/pkg/analyze/explain"
	"github.com/imagefs/imagefs/pkg/analyze/pressure"
	"github.com/imagefs/imagefs/pkg/fsinfo"
	"github.com/imagefs/imagefs/pkg/kubeletconfig"
	"github.com/imagefs/imagefs/pkg/output"
	"github.com/imagefs/imagefs/pkg/stats"
)

// DefaultInterval is how often serve collects (the kubelet's cadvisor
// housekeeping and eviction loop run every 10-15 s).
const DefaultInterval = 15 * time.Second

// ReadyAfterIntervals: /readyz fails once the last good collection is this
// many intervals old.
const ReadyAfterIntervals = 3

// Source runs one collection: the Summary and the mount table it used.
type Source func(ctx context.Context) (*stats.Result, *fsinfo.MountTable, error)

// RuntimeError marks a collection that failed because the container
// runtime did not answer (dial or CRI call): imagefs_runtime_up is 0. Any
// other failure (the mount table) leaves runtime_up as it was.
type RuntimeError struct{ Err error }

func (e RuntimeError) Error() string { return e.Err.Error() }
func (e RuntimeError) Unwrap() error { return e.Err }

// Options configure an Exporter.
type Options struct {
	Source   Source
	Interval time.Duration
	// Settings are the kubelet's eviction and image GC settings; nil omits
	// the eviction, DiskPressure and image GC metrics.
	Settings *kubeletconfig.Settings
	// SettingsSource is file, kubelet or defaults (imagefs_kubelet_config_info).
	SettingsSource string
	// Guard, when the Source uses one, reports stuck mounts.
	Guard *StuckGuard
	// StaleAfter is doctor's stale-usage limit (0: its default).
	StaleAfter time.Duration
	Logger     *slog.Logger
	// Sentence turns a collection error into one sentence for the log and
	// /readyz (default: err.Error()).
	Sentence func(error) string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Snapshot is one good collection and everything derived from it.
type Snapshot struct {
	Result   *stats.Result
	Table    *fsinfo.MountTable
	Settings *kubeletconfig.Settings
	Pressure *pressure.Report
	Doctor   *doctor.Report
	Explain  *explain.Report

	// JSON bodies, rendered once per collection.
	SummaryJSON, ExplainJSON, DoctorJSON []byte

	metrics []prometheus.Metric
}

// Exporter collects in the background and answers from the last snapshot.
type Exporter struct {
	o Options

	mu           sync.RWMutex
	last         *Snapshot
	lastSuccess  time.Time
	lastDuration time.Duration
	lastErr      error
	attempted    bool
	runtimeUp    bool
	collections  uint64
	errors       uint64
}

var _ prometheus.Collector = (*Exporter)(nil)

// New returns an Exporter; nothing is collected until Run or CollectNow.
func New(o Options) *Exporter {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Sentence == nil {
		o.Sentence = func(err error) string { return err.Error() }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SettingsSource == "" {
		o.SettingsSource = "defaults"
	}
	return &Exporter{o: o}
}

// Run collects now and then every interval until ctx is done. Collections
// never overlap: a slow one delays the next.
func (e *Exporter) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		_ = e.CollectNow(ctx) // recorded and logged
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CollectNow runs one collection and, if it succeeds, makes it the
// snapshot scrapes are answered from.
func (e *Exporter) CollectNow(ctx context.Context) error {
	start := e.o.Now()
	res, table, err := e.o.Source(ctx)
	var snap *Snapshot
	if err == nil {
		snap, err = e.derive(res, table)
	}
	elapsed := e.o.Now().Sub(start)
	if err != nil && ctx.Err() != nil {
		return err // shutting down: the collection was cut short, not failed
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	prevErr, wasAttempted := e.lastErr, e.attempted
	e.attempted = true
	e.collections++
	e.lastDuration = elapsed
	e.lastErr = err
	if err != nil {
		e.errors++
		var re RuntimeError
		if errors.As(err, &re) {
			e.runtimeUp = false
		}
		msg := e.o.Sentence(err)
		if prevErr == nil || e.o.Sentence(prevErr) != msg {
			e.o.Logger.Warn("collection failed; serving the last good collection", "error", msg)
		} else {
			e.o.Logger.Debug("collection failed again", "error", msg)
		}
		return err
	}
	if prevErr != nil && wasAttempted {
		e.o.Logger.Info("collection succeeded again", "after", elapsed.Round(time.Millisecond))
	}
	e.runtimeUp = true
	e.last = snap
	e.lastSuccess = start
	e.o.Logger.Debug("collected", "duration", elapsed.Round(time.Microsecond))
	return nil
}

// derive computes the analyses, JSON bodies and metrics of a collection.
func (e *Exporter) derive(res *stats.Result, table *fsinfo.MountTable) (*Snapshot, error) {
	s := &Snapshot{Result: res, Table: table, Settings: e.o.Settings}
	if e.o.Settings != nil {
		p, err := pressure.Evaluate(res, e.o.Settings)
		if err != nil {
			return nil, fmt.Errorf("evaluate eviction thresholds: %w", err)
		}
		s.Pressure = p
	}
	// No directory walks (Usage nil): they would cost a du of the
	// runtime's root every interval.
	s.Doctor = doctor.Run(doctor.Inputs{Result: res, Table: table, StaleAfter: e.o.StaleAfter})
	at := res.CollectedAt
	rep, err := explain.Build(res, table, explain.Options{Now: func() time.Time { return at }})
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	s.Explain = rep

	var b bytes.Buffer
	if err := output.Stats(&b, res, output.StatsOptions{Format: output.FormatJSON}); err != nil {
		return nil, err
	}
	s.SummaryJSON = bytes.Clone(b.Bytes())
	b.Reset()
	if err := output.Explain(&b, rep, output.ExplainOptions{Format: output.FormatJSON}); err != nil {
		return nil, err
	}
	s.ExplainJSON = bytes.Clone(b.Bytes())
	b.Reset()
	if err := output.Doctor(&b, s.Doctor, output.DoctorOptions{Format: output.FormatJSON}); err != nil {
		return nil, err
	}
	s.DoctorJSON = bytes.Clone(b.Bytes())
	s.metrics = snapshotMetrics(s)
	return s, nil
}

// Snapshot returns the last good collection, or nil.
func (e *Exporter) Snapshot() *Snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.last
}

// LastError returns the last collection's error (nil if it succeeded) as
// one sentence, "" if none.
func (e *Exporter) LastError() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.lastErr == nil {
		return ""
	}
	return e.o.Sentence(e.lastErr)
}

// Ready reports whether a collection succeeded recently: less than
// ReadyAfterIntervals intervals ago. The reason says why not, or how old
// the snapshot is.
func (e *Exporter) Ready() (bool, string) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var cause string
	if e.lastErr != nil {
		cause = "; last error: " + e.o.Sentence(e.lastErr)
	}
	if e.last == nil {
		if !e.attempted {
			return false, "no collection yet"
		}
		return false, "no successful collection yet" + cause
	}
	age := e.o.Now().Sub(e.lastSuccess)
	limit := ReadyAfterIntervals * e.o.Interval
	if age >= limit {
		return false, fmt.Sprintf("last successful collection %s ago, older than %d×interval (%s)%s", age.Round(time.Millisecond), ReadyAfterIntervals, limit, cause)
	}
	return true, fmt.Sprintf("last successful collection %s ago%s", age.Round(time.Millisecond), cause)
}

// Describe sends every metric's description: the exporter is a checked
// collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range allMetrics {
		ch <- m.desc
	}
}

// Collect sends the last snapshot's metrics and the collection state. It
// never blocks on a collection.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.RLock()
	last, lastSuccess, duration := e.last, e.lastSuccess, e.lastDuration
	attempted, failed, up := e.attempted, e.lastErr != nil, e.runtimeUp
	collections, errs := e.collections, e.errors
	e.mu.RUnlock()

	if last != nil {
		for _, m := range last.metrics {
			ch <- m
		}
		ch <- mCollectionTimestamp.must(float64(lastSuccess.UnixNano()) / 1e9)
	}
	if e.o.Settings != nil {
		ch <- mKubeletConfigInfo.must(1, e.o.SettingsSource)
	}
	ch <- mRuntimeUp.must(bool01(up))
	if attempted {
		ch <- mCollectionDuration.must(duration.Seconds())
		ch <- mCollectionSuccess.must(bool01(!failed))
	}
	ch <- mCollectionsTotal.must(float64(collections))
	ch <- mCollectionErrors.must(float64(errs))
	if e.o.Guard != nil {
		for _, m := range e.o.Guard.Mounts() {
			ch <- mMountStuck.must(bool01(m.Stuck), m.Path)
		}
	}
}
