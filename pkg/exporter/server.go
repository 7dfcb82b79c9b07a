package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultListen is serve's default address: loopback only, since the
// endpoints are unauthenticated and reveal the node's paths and devices.
const DefaultListen = "127.0.0.1:9847"

// DefaultShutdownTimeout bounds the wait for in-flight requests on SIGTERM.
const DefaultShutdownTimeout = 5 * time.Second

// NewRegistry returns a registry with the exporter and the Go runtime and
// process collectors (RSS, CPU, file descriptors of imagefs itself).
func NewRegistry(e *Exporter) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

const index = `<html><head><title>imagefs</title></head><body>
<h1>imagefs exporter</h1>
<ul>
<li><a href="metrics">/metrics</a>: Prometheus metrics of the last good collection</li>
<li><a href="stats/summary">/stats/summary</a>: node.fs, imageFs and containerFs in the kubelet's Summary API shape (imagefs stats -o json)</li>
<li><a href="explain">/explain</a>: how the kubelet computes each number (imagefs explain -o json)</li>
<li><a href="doctor">/doctor</a>: checks of the known failure modes (imagefs doctor -o json)</li>
<li><a href="healthz">/healthz</a>: the process is alive</li>
<li><a href="readyz">/readyz</a>: a collection succeeded recently</li>
</ul></body></html>
`

// Handler serves the exporter's endpoints; g is what /metrics gathers
// (usually NewRegistry(e)). Every handler reads the last snapshot and
// never waits for a collection.
func (e *Exporter) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, index)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(e.o.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	snapshotJSON := func(body func(*Snapshot) []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			s := e.Snapshot()
			if s == nil {
				_, why := e.Ready()
				http.Error(w, "imagefs: "+why, http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body(s))
		}
	}
	mux.Handle("GET /stats/summary", snapshotJSON(func(s *Snapshot) []byte { return s.SummaryJSON }))
	mux.Handle("GET /explain", snapshotJSON(func(s *Snapshot) []byte { return s.ExplainJSON }))
	mux.Handle("GET /doctor", snapshotJSON(func(s *Snapshot) []byte { return s.DoctorJSON }))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := e.Ready()
		if !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok: "+why)
	})
	return mux
}

// ServeOptions configure Serve.
type ServeOptions struct {
	// Gatherer is what /metrics serves (default NewRegistry(e)).
	Gatherer prometheus.Gatherer
	// ShutdownTimeout bounds the wait for in-flight requests once ctx is
	// done (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
}

// ErrShutdownTimeout means requests were still in flight when the
// shutdown deadline passed; their connections were closed.
var ErrShutdownTimeout = errors.New("requests still in flight at the shutdown deadline")

// Serve runs the collection loop and the HTTP server on ln until ctx is
// done, then stops collecting and shuts the server down gracefully: no new
// connections, in-flight requests get up to ShutdownTimeout to finish.
func Serve(ctx context.Context, ln net.Listener, e *Exporter, o ServeOptions) error {
	if o.Gatherer == nil {
		o.Gatherer = NewRegistry(e)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	srv := &http.Server{
		Handler:           e.Handler(o.Gatherer),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(e.o.Logger.Handler(), slog.LevelDebug),
	}

	collectCtx, stopCollecting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCollecting()
	var collecting sync.WaitGroup
	collecting.Go(func() { e.Run(collectCtx) })

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		// The listener failed; shut down what is left.
	}
	e.o.Logger.Debug("shutting down", "timeout", o.ShutdownTimeout)
	stopCollecting()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
		err = fmt.Errorf("%w (%s)", ErrShutdownTimeout, o.ShutdownTimeout)
	}
	// The collection in flight sees its context cancelled; its runtime
	// calls return at once and stuck statfs calls are abandoned by the
	// guard, so this wait is bounded by the guard's timeouts.
	done := make(chan struct{})
	go func() { collecting.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		e.o.Logger.Warn("a collection was still running at the shutdown deadline")
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), serveErr)
	}
	return err
}
