package containerd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	bolt "go.etcd.io/bbolt"
)

// SnapshotDBName is the overlay (and native) snapshotter's metadata file in
// its root dir; its snapshots live in <root>/snapshots/<ID>.
const SnapshotDBName = "metadata.db"

// SnapshotDB is the overlay snapshotter's own record of its snapshots, all
// namespaces together: the numeric IDs that name the dirs under
// <root>/snapshots, which the API never returns.
type SnapshotDB struct {
	Path    string           `json:"path"`
	Records []SnapshotRecord `json:"records"`
	// Reads is how many times the file was read before two reads agreed.
	Reads int `json:"reads"`
}

// SnapshotRecord is one snapshot of the snapshotter's metadata.db.
type SnapshotRecord struct {
	// Key is the backend key, "<namespace>/<n>/<name>" for snapshots made
	// through containerd's metadata layer (core/metadata/snapshot.go createKey).
	Key       string `json:"key"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"` // the key as the namespaced API shows it
	ID        string `json:"id"`             // dir name under <root>/snapshots
	Kind      string `json:"kind"`
	Parent    string `json:"parent,omitempty"` // backend key
	// Usage stored at commit (committed snapshots only).
	Bytes  uint64 `json:"bytes"`
	Inodes uint64 `json:"inodes"`
}

// IDs maps every snapshot ID to its backend key.
func (db *SnapshotDB) IDs() map[string]string {
	m := make(map[string]string, len(db.Records))
	for _, r := range db.Records {
		m[r.ID] = r.Key
	}
	return m
}

// ErrDBChanging means the file kept changing while it was copied.
var ErrDBChanging = errors.New("metadata.db changed during every read")

// ReadSnapshotDB reads a snapshotter's metadata.db without opening it in
// place. containerd holds an exclusive flock on it for as long as it runs
// (measured: /proc/locks shows FLOCK WRITE by containerd's PID), so bbolt's
// read-only Open, which takes a shared flock, would wait for containerd to
// exit; and while containerd is stopped, holding even a shared lock would
// make a starting containerd wait for us. Instead the file is read
// whole into memory, twice, until two successive reads are byte-identical
// (a transaction committing mid-read shows as a difference; bolt writes with
// pwrite, so reads see every committed page), and bbolt opens that private
// copy (a memfd on Linux) read-only. Nothing touches the original beyond
// read(2): no lock, no write.
func ReadSnapshotDB(path string) (*SnapshotDB, error) {
	var data []byte
	reads := 0
	for attempt := 0; attempt < 5; attempt++ {
		a, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		reads += 2
		if bytes.Equal(a, b) {
			data = b
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if data == nil {
		return nil, fmt.Errorf("%s: %w (%d reads)", path, ErrDBChanging, reads)
	}
	recs, err := parseSnapshotDB(path, data)
	if err != nil {
		return nil, err
	}
	return &SnapshotDB{Path: path, Records: recs, Reads: reads}, nil
}

// parseSnapshotDB opens data (a bolt file image) read-only through a private
// file and reads bucket v1/snapshots as core/snapshots/storage/bolt.go lays
// it out.
func parseSnapshotDB(path string, data []byte) ([]SnapshotRecord, error) {
	f, err := privateFile(data)
	if err != nil {
		return nil, fmt.Errorf("copy of %s: %w", path, err)
	}
	defer f.Close()
	db, err := bolt.Open(path, 0o400, &bolt.Options{
		ReadOnly: true,
		Timeout:  time.Second, // the lock is on our private copy: never contended
		OpenFile: func(string, int, os.FileMode) (*os.File, error) { return f, nil },
	})
	if err != nil {
		return nil, fmt.Errorf("open copy of %s: %w", path, err)
	}
	defer db.Close()
	var recs []SnapshotRecord
	err = db.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket([]byte("v1"))
		if v1 == nil {
			return nil // a snapshotter that never stored anything
		}
		sb := v1.Bucket([]byte("snapshots"))
		if sb == nil {
			return nil
		}
		return sb.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			b := sb.Bucket(k)
			r := SnapshotRecord{Key: string(k)}
			id, _ := binary.Uvarint(b.Get([]byte("id")))
			r.ID = strconv.FormatUint(id, 10)
			if kb := b.Get([]byte("kind")); len(kb) == 1 {
				r.Kind = snapshots.Kind(kb[0]).String()
			}
			r.Parent = string(b.Get([]byte("parent")))
			if s, n := binary.Varint(b.Get([]byte("size"))); n > 0 && s > 0 {
				r.Bytes = uint64(s)
			}
			if s, n := binary.Varint(b.Get([]byte("inodes"))); n > 0 && s > 0 {
				r.Inodes = uint64(s)
			}
			r.Namespace, r.Name = SplitBackendKey(r.Key)
			recs = append(recs, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read copy of %s: %w", path, err)
	}
	return recs, nil
}

// SplitBackendKey splits a backend snapshot key "<namespace>/<n>/<name>"
// into namespace and name; other keys give "", "".
func SplitBackendKey(key string) (ns, name string) {
	ns, rest, ok := strings.Cut(key, "/")
	if !ok {
		return "", ""
	}
	seq, name, ok := strings.Cut(rest, "/")
	if !ok || seq == "" {
		return "", ""
	}
	if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
		return "", ""
	}
	return ns, name
}
