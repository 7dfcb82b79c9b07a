//go:build linux

package containerd

import (
	"encoding/binary"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// writeDB writes a metadata.db laid out as core/snapshots/storage/bolt.go
// does, and returns its path.
func writeDB(t *testing.T, recs []SnapshotRecord) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), SnapshotDBName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists([]byte("v1"))
		if err != nil {
			return err
		}
		sb, err := v1.CreateBucketIfNotExists([]byte("snapshots"))
		if err != nil {
			return err
		}
		for _, r := range recs {
			b, err := sb.CreateBucket([]byte(r.Key))
			if err != nil {
				return err
			}
			var id uint64
			for _, c := range r.ID {
				id = id*10 + uint64(c-'0')
			}
			buf := make([]byte, binary.MaxVarintLen64)
			b.Put([]byte("id"), buf[:binary.PutUvarint(buf, id)])
			kind := snapshots.KindCommitted
			if r.Kind == KindActive {
				kind = snapshots.KindActive
			}
			b.Put([]byte("kind"), []byte{byte(kind)})
			if r.Parent != "" {
				b.Put([]byte("parent"), []byte(r.Parent))
			}
			if r.Bytes > 0 {
				s := make([]byte, binary.MaxVarintLen64)
				b.Put([]byte("size"), s[:binary.PutVarint(s, int64(r.Bytes))])
				i := make([]byte, binary.MaxVarintLen64)
				b.Put([]byte("inodes"), i[:binary.PutVarint(i, int64(r.Inodes))])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSnapshotDB(t *testing.T) {
	want := []SnapshotRecord{
		{Key: "default/3/sha256:bbb", Namespace: "default", Name: "sha256:bbb", ID: "7", Kind: KindCommitted, Bytes: 4096, Inodes: 2},
		{Key: "k8s.io/1/sha256:aaa", Namespace: "k8s.io", Name: "sha256:aaa", ID: "1", Kind: KindCommitted, Bytes: 1 << 20, Inodes: 12},
		{Key: "k8s.io/9/ctr-1", Namespace: "k8s.io", Name: "ctr-1", ID: "12", Kind: KindActive, Parent: "k8s.io/1/sha256:aaa"},
	}
	path := writeDB(t, want)

	// containerd holds an exclusive flock on the file while it runs: the
	// read must neither wait for it nor take any lock on the file.
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	db, err := ReadSnapshotDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("took %v with the file locked: it waited for the lock", took)
	}
	if !reflect.DeepEqual(db.Records, want) {
		t.Errorf("records\n got %+v\nwant %+v", db.Records, want)
	}
	if got := db.IDs(); !reflect.DeepEqual(got, map[string]string{"7": want[0].Key, "1": want[1].Key, "12": want[2].Key}) {
		t.Errorf("IDs %v", got)
	}
	if db.Reads != 2 {
		t.Errorf("reads %d, want 2 (one agreeing pair)", db.Reads)
	}
}

func TestSplitBackendKey(t *testing.T) {
	for _, tt := range []struct{ key, ns, name string }{
		{"k8s.io/12/sha256:abc", "k8s.io", "sha256:abc"},
		{"k8s.io/3/extract-1 sha256:x/y", "k8s.io", "extract-1 sha256:x/y"},
		{"plain-key", "", ""},
		{"ns/notanumber/x", "", ""},
	} {
		if ns, name := SplitBackendKey(tt.key); ns != tt.ns || name != tt.name {
			t.Errorf("SplitBackendKey(%q) = %q, %q", tt.key, ns, name)
		}
	}
}

func TestSnapshotterFromStatusInfo(t *testing.T) {
	if got := SnapshotterFromStatusInfo(map[string]string{"config": `{"containerd":{"snapshotter":"overlayfs","runtimes":{}}}`}); got != "overlayfs" {
		t.Errorf("1.x config: %q", got)
	}
	if got := SnapshotterFromStatusInfo(map[string]string{"config": `{"containerd":{"defaultRuntimeName":"runc"}}`}); got != "" {
		t.Errorf("2.x config: %q", got)
	}
	if got := SnapshotterFromStatusInfo(nil); got != "" {
		t.Errorf("no info: %q", got)
	}
}
