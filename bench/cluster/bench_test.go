package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imagefs/imagefs/internal/kubelettest"
	"github.com/imagefs/imagefs/pkg/cluster"
	"github.com/imagefs/imagefs/pkg/kubelet"
)

// BenchmarkCollect is the cluster view of 1000 simulated nodes with the
// server in this process (so B/op counts both sides): without latency it
// measures the client's CPU cost per node, with 50ms the fan-out.
//
//	go test -run '^$' -bench Collect -benchtime 3x ./bench/cluster
func BenchmarkCollect(b *testing.B) {
	for _, tc := range []struct {
		latency  time.Duration
		timeouts float64
	}{
		{0, 0},
		{50 * time.Millisecond, 0},
		{50 * time.Millisecond, 0.01},
	} {
		c := config{nodes: 1000, latency: tc.latency, errors: 0.02, timeouts: tc.timeouts, missing: 0.01, seed: 1, http2: true}
		b.Run(fmt.Sprintf("nodes=%d/latency=%s/timeouts=%g", c.nodes, c.latency, c.timeouts), func(b *testing.B) {
			s := kubelettest.Start(b, serverOptions(c))
			cfg, err := kubelet.RESTConfig(kubelet.KubeconfigOptions{Kubeconfig: s.Kubeconfig})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := cluster.Collect(context.Background(), cfg, cluster.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if r.Totals.Nodes != c.nodes {
					b.Fatalf("%d nodes", r.Totals.Nodes)
				}
			}
			b.ReportMetric(float64(c.nodes)*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
			b.ReportMetric(float64(s.MaxInFlight()), "max-in-flight")
		})
	}
}
