package kubelet_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/imagefs/imagefs/pkg/kubelet"
)

func u(v uint64) *uint64 { return &v }
func i(v int64) *int64   { return &v }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fs(tm time.Time, avail, capacity, used, ifree, inodes, iused uint64) *statsapi.FsStats {
	return &statsapi.FsStats{
		Time:           metav1.NewTime(tm),
		AvailableBytes: u(avail), CapacityBytes: u(capacity), UsedBytes: u(used),
		InodesFree: u(ifree), Inodes: u(inodes), InodesUsed: u(iused),
	}
}

// row is a FieldDiff in short: values as strings ("-" omitted), diff or nil.
type row struct {
	field      string
	ours, live string
	diff       *int64
	equal      bool
}

func TestCompare(t *testing.T) {
	live := fs(t0, 400, 1000, 500, 90, 100, 10)
	tests := []struct {
		name       string
		ours, live *statsapi.FsStats
		want       []row
	}{
		{
			name: "equal",
			// A fraction of a second is below the wire's resolution.
			ours: fs(t0.Add(700*time.Millisecond), 400, 1000, 500, 90, 100, 10),
			live: live,
			want: []row{
				{"time", t0.Add(700 * time.Millisecond).Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano), i(0), true},
				{"availableBytes", "400", "400", i(0), true},
				{"capacityBytes", "1000", "1000", i(0), true},
				{"usedBytes", "500", "500", i(0), true},
				{"inodesFree", "90", "90", i(0), true},
				{"inodes", "100", "100", i(0), true},
				{"inodesUsed", "10", "10", i(0), true},
			},
		},
		{
			name: "different",
			ours: fs(t0.Add(-3*time.Second), 350, 1000, 600, 95, 100, 5),
			live: live,
			want: []row{
				{"time", t0.Add(-3 * time.Second).Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano), i(-3), false},
				{"availableBytes", "350", "400", i(-50), false},
				{"capacityBytes", "1000", "1000", i(0), true},
				{"usedBytes", "600", "500", i(100), false},
				{"inodesFree", "95", "90", i(5), false},
				{"inodes", "100", "100", i(0), true},
				{"inodesUsed", "5", "10", i(-5), false},
			},
		},
		{
			// What the kubelet does when cadvisor cannot stat the image
			// filesystem's device: used bytes only.
			name: "fields omitted on one side",
			ours: &statsapi.FsStats{Time: metav1.NewTime(t0), UsedBytes: u(500), InodesUsed: u(10)},
			live: live,
			want: []row{
				{"time", t0.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano), i(0), true},
				{"availableBytes", "-", "400", nil, false},
				{"capacityBytes", "-", "1000", nil, false},
				{"usedBytes", "500", "500", i(0), true},
				{"inodesFree", "-", "90", nil, false},
				{"inodes", "-", "100", nil, false},
				{"inodesUsed", "10", "10", i(0), true},
			},
		},
		{
			name: "ours nil",
			ours: nil,
			live: live,
			want: []row{
				{"time", "-", t0.Format(time.RFC3339Nano), nil, false},
				{"availableBytes", "-", "400", nil, false},
				{"capacityBytes", "-", "1000", nil, false},
				{"usedBytes", "-", "500", nil, false},
				{"inodesFree", "-", "90", nil, false},
				{"inodes", "-", "100", nil, false},
				{"inodesUsed", "-", "10", nil, false},
			},
		},
		{
			name: "live nil",
			ours: live,
			live: nil,
			want: []row{
				{"time", t0.Format(time.RFC3339Nano), "-", nil, false},
				{"availableBytes", "400", "-", nil, false},
				{"capacityBytes", "1000", "-", nil, false},
				{"usedBytes", "500", "-", nil, false},
				{"inodesFree", "90", "-", nil, false},
				{"inodes", "100", "-", nil, false},
				{"inodesUsed", "10", "-", nil, false},
			},
		},
		{
			name: "both nil",
			want: []row{
				{"time", "-", "-", nil, true},
				{"availableBytes", "-", "-", nil, true},
				{"capacityBytes", "-", "-", nil, true},
				{"usedBytes", "-", "-", nil, true},
				{"inodesFree", "-", "-", nil, true},
				{"inodes", "-", "-", nil, true},
				{"inodesUsed", "-", "-", nil, true},
			},
		},
		{
			name: "zero is a value, not an omission",
			ours: &statsapi.FsStats{UsedBytes: u(0)},
			live: &statsapi.FsStats{UsedBytes: u(math.MaxUint64), InodesUsed: u(0)},
			want: []row{
				{"time", "-", "-", nil, true},
				{"availableBytes", "-", "-", nil, true},
				{"capacityBytes", "-", "-", nil, true},
				{"usedBytes", "0", "18446744073709551615", i(math.MinInt64), false},
				{"inodesFree", "-", "-", nil, true},
				{"inodes", "-", "-", nil, true},
				{"inodesUsed", "-", "0", nil, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kubelet.Compare(tt.ours, tt.live)
			if len(got) != len(tt.want) {
				t.Fatalf("%d rows, want %d", len(got), len(tt.want))
			}
			for n, w := range tt.want {
				g := got[n]
				gr := row{g.Field, value(g.Ours, g.OursTime), value(g.Live, g.LiveTime), g.Diff, g.Equal}
				if gr.field != w.field || gr.ours != w.ours || gr.live != w.live || gr.equal != w.equal || !sameDiff(gr.diff, w.diff) {
					t.Errorf("row %d = %s, want %s", n, showRow(gr), showRow(w))
				}
			}
		})
	}
}

func TestCompareDoesNotAlias(t *testing.T) {
	ours := fs(t0, 1, 2, 3, 4, 5, 6)
	got := kubelet.Compare(ours, nil)
	*got[3].Ours = 99
	if *ours.UsedBytes != 3 {
		t.Error("Compare returned a pointer into its input")
	}
}

func TestCompareSummaries(t *testing.T) {
	image := fs(t0, 400, 1000, 500, 90, 100, 10)
	live := &statsapi.Summary{Node: statsapi.NodeStats{
		NodeName: "n",
		Fs:       fs(t0, 7000, 10000, 3000, 900, 1000, 100),
		Runtime:  &statsapi.RuntimeStats{ImageFs: image, ContainerFs: image},
	}}
	ours := fs(t0, 400, 1000, 512, 90, 100, 10)
	got := kubelet.CompareSummaries(live.Node.Fs, ours, nil, live)
	if len(got) != 3 || got[0].Role != kubelet.RoleNode || got[1].Role != kubelet.RoleImage || got[2].Role != kubelet.RoleContainer {
		t.Fatalf("roles %+v", got)
	}
	for _, f := range got[0].Fields {
		if !f.Equal {
			t.Errorf("node.%s not equal: %+v", f.Field, f)
		}
	}
	if f := got[1].Fields[3]; f.Field != kubelet.FieldUsedBytes || f.Equal || *f.Diff != 12 {
		t.Errorf("image.usedBytes = %+v, want diff 12", f)
	}
	if f := got[2].Fields[1]; f.Ours != nil || *f.Live != 400 || f.Equal {
		t.Errorf("container.availableBytes = %+v, want only live", f)
	}

	// A kubelet without runtime stats, and no live Summary at all.
	for _, s := range []*statsapi.Summary{{Node: statsapi.NodeStats{NodeName: "n"}}, nil} {
		for _, rd := range kubelet.CompareSummaries(ours, ours, ours, s) {
			if f := rd.Fields[3]; f.Live != nil || f.Equal {
				t.Errorf("%s.usedBytes = %+v, want live omitted", rd.Role, f)
			}
		}
	}

	b, err := json.Marshal(got[1].Fields[3])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"field":"usedBytes","ours":512,"live":500,"diff":12,"equal":false}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

func value(v *uint64, tm *time.Time) string {
	switch {
	case v != nil:
		b, _ := json.Marshal(*v)
		return string(b)
	case tm != nil:
		return tm.UTC().Format(time.RFC3339Nano)
	}
	return "-"
}

func sameDiff(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func showRow(r row) string {
	d := "nil"
	if r.diff != nil {
		b, _ := json.Marshal(*r.diff)
		d = string(b)
	}
	return strings.Join([]string{r.field, "ours=" + r.ours, "live=" + r.live, "diff=" + d, map[bool]string{true: "equal", false: "differs"}[r.equal]}, " ")
}
