// Command stats benchmarks imagefs stats end to end against crictl
// imagefsinfo on the same runtime in the same run: both are whole process
// invocations (fork, exec, dial, CRI call, output), so the ratio is what an
// operator feels. imagefs does more per run (mountinfo, two stats, two
// statfs); crictl makes only the CRI call.
//
//	go run ./bench/stats [-n 30] [-runtime-endpoint unix:///…]
//
// Without -runtime-endpoint it starts a private containerd on a loop ext4
// (needs root and scripts/install-deps.sh), imports the demo images and
// tears it down afterwards.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/imagefs/imagefs/internal/lab"
)

func main() {
	n := flag.Int("n", 30, "runs of each command")
	endpoint := flag.String("runtime-endpoint", "", "benchmark against this runtime instead of a private one")
	binary := flag.String("binary", "containerd-2.4", "containerd build for the private runtime")
	flag.Parse()
	log.SetFlags(0)

	tmp, err := os.MkdirTemp("", "imagefs-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	imagefs := filepath.Join(tmp, "imagefs")
	if out, err := exec.Command("go", "build", "-o", imagefs, "./cmd/imagefs").CombinedOutput(); err != nil {
		log.Fatalf("build imagefs: %v\n%s", err, out)
	}

	rootDir := "/"
	if *endpoint == "" {
		b, err := lab.BinaryByName(*binary)
		if err != nil {
			log.Fatal(err)
		}
		labDir := filepath.Join(tmp, "lab")
		st, err := lab.Up(context.Background(), lab.UpOptions{Dir: labDir, FSType: "ext4", Binary: b})
		if err != nil {
			log.Fatal(err)
		}
		defer func() {
			if err := lab.Down(labDir); err != nil {
				log.Print(err)
			}
		}()
		*endpoint = st.Containerds[0].Endpoint
		rootDir = st.Mounts[0].Dir
	}

	peers := []struct {
		name string
		argv []string
	}{
		{"imagefs stats -o json", []string{imagefs, "stats", "-o", "json", "--runtime-endpoint", *endpoint, "--root-dir", rootDir}},
		{"crictl imagefsinfo", []string{"crictl", "--runtime-endpoint", *endpoint, "imagefsinfo", "-o", "json"}},
	}
	results := make([][]time.Duration, len(peers))
	// Interleave the peers so drift on the machine hits both alike.
	for i := 0; i < *n+2; i++ {
		for p, peer := range peers {
			start := time.Now()
			cmd := exec.Command(peer.argv[0], peer.argv[1:]...)
			if out, err := cmd.CombinedOutput(); err != nil {
				log.Fatalf("%s: %v\n%s", peer.name, err, out)
			}
			if i >= 2 { // two warm-up rounds
				results[p] = append(results[p], time.Since(start))
			}
		}
	}
	fmt.Printf("machine: %d CPUs, %s/%s, %s runs each, endpoint %s\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, fmt.Sprint(*n), *endpoint)
	fmt.Println("| command | median | p90 | min | crictl median ÷ this median |")
	fmt.Println("|---|---|---|---|---|")
	base := median(results[0])
	for p, peer := range peers {
		r := results[p]
		fmt.Printf("| `%s` | %s | %s | %s | %.2f |\n", peer.name, ms(median(r)), ms(pct(r, 90)), ms(pct(r, 0)), float64(median(results[1]))/float64(median(r)))
	}
	fmt.Printf("\nimagefs / crictl median: %.2f× (above 1: imagefs is slower)\n", float64(base)/float64(median(results[1])))
}

func sorted(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

func pct(d []time.Duration, p int) time.Duration {
	s := sorted(d)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
