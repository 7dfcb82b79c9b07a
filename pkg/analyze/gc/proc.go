package gc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc/<pid>/stat starttime. The kernel exports
// USER_HZ = 100 on every architecture Kubernetes supports, whatever its
// internal HZ (sysconf(_SC_CLK_TCK) needs cgo to ask).
const userHZ = 100

// ErrNoKubelet means no process named kubelet was found.
var ErrNoKubelet = errors.New("no kubelet process found")

// Process is a process found under a proc root.
type Process struct {
	PID   int       `json:"pid"`
	Start time.Time `json:"start"`
}

// FindKubelet returns the longest-running process whose comm is
// "kubelet" under procRoot ("/proc" on the host; it must be the host's PID
// namespace to see the kubelet), with its start time from
// /proc/<pid>/stat and the boot time in /proc/stat. It returns an error
// wrapping ErrNoKubelet when there is none.
func FindKubelet(procRoot string) (Process, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return Process{}, fmt.Errorf("looking for the kubelet in %s: %w", procRoot, err)
	}
	var best Process
	var bestTicks uint64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "kubelet" {
			continue
		}
		ticks, err := startTicks(procRoot, pid)
		if err != nil {
			continue // exited meanwhile
		}
		if best.PID == 0 || ticks < bestTicks {
			best, bestTicks = Process{PID: pid}, ticks
		}
	}
	if best.PID == 0 {
		return Process{}, fmt.Errorf("%w in %s", ErrNoKubelet, procRoot)
	}
	boot, err := BootTime(procRoot)
	if err != nil {
		return Process{}, err
	}
	best.Start = boot.Add(time.Duration(bestTicks) * time.Second / userHZ)
	return best, nil
}

// startTicks reads field 22 (starttime, clock ticks after boot) of
// /proc/<pid>/stat; the fields are counted after the ")" closing comm,
// which may itself contain spaces and parentheses.
func startTicks(procRoot string, pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s/%d/stat: no comm", procRoot, pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, fmt.Errorf("%s/%d/stat: %d fields after comm", procRoot, pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// BootTime is the btime line of <procRoot>/stat.
func BootTime(procRoot string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, fmt.Errorf("boot time: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("boot time: %s/stat: %w", procRoot, err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("boot time: no btime in %s/stat", procRoot)
}
