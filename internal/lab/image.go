package lab

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of an image layer.
type File struct {
	Path    string // path in the image; a leading "/" is ignored
	Size    int64  // size of a regular file whose Content is nil
	Content []byte // nil => Size pseudo-random bytes, a function of Seed and Path
	Mode    int64  // permission bits; 0 => 0644 for files, 0755 for dirs
	Link    string // hard link to this path (earlier in the same layer)
	Symlink string // symbolic link to this target
	Dir     bool   // a directory
	Seed    int64  // varies the generated content of files with the same Path
}

// ImageConfig is the part of the image config BuildImageWithConfig sets.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
}

// epoch is every timestamp in built images: same input, same bytes, same digests.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildImage writes a docker-archive tarball at tarPath holding image ref with
// one layer per []File, in order. The output depends only on the arguments, so
// identical []File give identical layer digests across images (the images then
// share snapshots). The config carries OS linux and this host's architecture:
// without them `ctr images import` filters the image out and unpacks nothing.
func BuildImage(tarPath, ref string, layers ...[]File) error {
	return BuildImageWithConfig(tarPath, ref, ImageConfig{Cmd: []string{"/bin/true"}}, layers...)
}

// BuildImageWithConfig is BuildImage with a chosen entrypoint, cmd and env
// (a pause image for pods needs a real entrypoint).
func BuildImageWithConfig(tarPath, ref string, cfg ImageConfig, layers ...[]File) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	img := empty.Image
	for i, files := range layers {
		if err := checkFiles(files); err != nil {
			return fmt.Errorf("build image %s: layer %d: %w", ref, i, err)
		}
		files := files
		// The tar is regenerated on every open instead of held in memory: it is
		// deterministic, and go-containerregistry reads it more than once.
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeLayer(pw, files)) }()
			return pr, nil
		})
		if err != nil {
			return fmt.Errorf("build image %s: layer %d: %w", ref, i, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("imagefs lab layer %d", i)},
		})
		if err != nil {
			return fmt.Errorf("build image %s: layer %d: %w", ref, i, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH // amd64 here; must match the host or ctr skips unpack
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = cfg.Entrypoint
	cf.Config.Cmd = cfg.Cmd
	cf.Config.Env = cfg.Env
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		return fmt.Errorf("build image %s: writing %s: %w", ref, tarPath, err)
	}
	return nil
}

// RandomLayers returns one layer per size, each holding a single file of that
// many pseudo-random bytes; the same seed gives the same layers.
func RandomLayers(seed int64, sizes ...int64) [][]File {
	layers := make([][]File, len(sizes))
	for i, size := range sizes {
		layers[i] = []File{{Path: fmt.Sprintf("random/s%d-l%d.bin", seed, i), Size: size, Seed: seed}}
	}
	return layers
}

// SmallFiles returns n files of size bytes each under dir (a layer of many
// inodes whose allocated size is dominated by block rounding).
func SmallFiles(dir string, n int, size int64) []File {
	files := make([]File, n)
	for i := range files {
		files[i] = File{Path: fmt.Sprintf("%s/f%04d", strings.Trim(dir, "/"), i), Size: size}
	}
	return files
}

func cleanPath(p string) string { return path.Clean(strings.TrimLeft(p, "/")) }

func checkFiles(files []File) error {
	for _, f := range files {
		p := cleanPath(f.Path)
		if p == "." || p == ".." || strings.HasPrefix(p, "../") {
			return fmt.Errorf("bad path %q", f.Path)
		}
		kinds := 0
		for _, set := range []bool{f.Dir, f.Link != "", f.Symlink != ""} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			return fmt.Errorf("%s: set only one of Dir, Link, Symlink", f.Path)
		}
		if f.Size < 0 || (f.Content != nil && f.Size != 0 && f.Size != int64(len(f.Content))) {
			return fmt.Errorf("%s: Size %d disagrees with Content", f.Path, f.Size)
		}
	}
	return nil
}

// writeLayer writes files as an uncompressed layer tar. Missing parent
// directories are added (mode 0755) before their first child so the layer
// looks like one a build tool makes; explicit Dir entries keep their mode.
func writeLayer(w io.Writer, files []File) error {
	tw := tar.NewWriter(w)
	explicit := map[string]File{}
	for _, f := range files {
		if f.Dir {
			explicit[cleanPath(f.Path)] = f
		}
	}
	written := map[string]bool{}
	var dir func(p string) error
	dir = func(p string) error {
		if p == "." || written[p] {
			return nil
		}
		if err := dir(path.Dir(p)); err != nil {
			return err
		}
		written[p] = true
		mode := int64(0o755)
		if f, ok := explicit[p]; ok && f.Mode != 0 {
			mode = f.Mode
		}
		return tw.WriteHeader(header(tar.TypeDir, p+"/", mode, 0))
	}
	for _, f := range files {
		p := cleanPath(f.Path)
		if err := dir(path.Dir(p)); err != nil {
			return err
		}
		switch {
		case f.Dir:
			if err := dir(p); err != nil {
				return err
			}
		case f.Symlink != "":
			h := header(tar.TypeSymlink, p, 0o777, 0)
			h.Linkname = f.Symlink
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		case f.Link != "":
			h := header(tar.TypeLink, p, orDefault(f.Mode, 0o644), 0)
			h.Linkname = cleanPath(f.Link)
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		default:
			size := f.Size
			if f.Content != nil {
				size = int64(len(f.Content))
			}
			if err := tw.WriteHeader(header(tar.TypeReg, p, orDefault(f.Mode, 0o644), size)); err != nil {
				return err
			}
			var err error
			if f.Content != nil {
				_, err = tw.Write(f.Content)
			} else {
				_, err = io.CopyN(tw, contentReader(f.Seed, p), size)
			}
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func header(typ byte, name string, mode, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ, Name: name, Mode: mode, Size: size,
		ModTime: epoch, Uname: "root", Gname: "root",
		Format: tar.FormatPAX, // fixed format: long names never switch the encoding
	}
}

func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// contentReader is an endless deterministic byte stream for (seed, path):
// different files get different bytes, so nothing dedups or compresses away.
func contentReader(seed int64, p string) io.Reader {
	h := sha256.New()
	_ = binary.Write(h, binary.LittleEndian, seed)
	h.Write([]byte(p))
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return rand.NewChaCha8(key)
}
