package droplet_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// snapshot describes a tree: for each path, its type, permissions, link
// target or content, and modification time for files and links.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			sum := sha1.Sum(b)
			// Tarballs keep whole seconds.
			desc += " " + hex.EncodeToString(sum[:8]) + " " + fi.ModTime().Truncate(time.Second).UTC().Format(time.RFC3339)
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	require.NoError(t, err)
	return out
}

// tarNames lists the entry names of a gzip droplet.
func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
	}
}

// writeSmallTree makes a tree with every kind of entry Pack handles.
func writeSmallTree(t *testing.T, dir string) {
	t.Helper()
	mk := func(p string, mode fs.FileMode, body string) {
		p = filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		require.NoError(t, os.Chmod(p, mode))
	}
	mk("app/Procfile", 0o644, "web: ./start\n")
	mk("app/bin/start", 0o755, "#!/bin/sh\nexec sleep 1000\n")
	mk("app/secret", 0o600, "s3cret")
	mk("app/readonly", 0o444, "ro")
	mk("app/héllo wörld/日本.txt", 0o644, "utf-8\n")
	mk("staging_info.yml", 0o644, `{"detected_buildpack":"x","start_command":"./start"}`)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "app/private"), 0o700))
	require.NoError(t, os.Symlink("bin/start", filepath.Join(dir, "app/run")))
	require.NoError(t, os.Symlink("/etc/hosts", filepath.Join(dir, "app/hosts")))
	require.NoError(t, os.Symlink("..", filepath.Join(dir, "app/up")))
	require.NoError(t, os.Link(filepath.Join(dir, "app/bin/start"), filepath.Join(dir, "app/bin/start-again")))
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+7) // several gzip blocks
	mk("app/big.bin", 0o644, string(big))
	mk("app/empty-file", 0o644, "")
}

func TestPackUnpackRoundTrip(t *testing.T) {
	for _, format := range []droplet.Format{droplet.Gzip, droplet.Zstd} {
		t.Run(format.String(), func(t *testing.T) {
			src := t.TempDir()
			writeSmallTree(t, src)
			var buf bytes.Buffer
			d, err := droplet.Pack(t.Context(), src, &buf, droplet.WithFormat(format))
			require.NoError(t, err)

			sum1, sum256 := sha1.Sum(buf.Bytes()), sha256.Sum256(buf.Bytes())
			assert.Equal(t, hex.EncodeToString(sum1[:]), d.SHA1)
			assert.Equal(t, hex.EncodeToString(sum256[:]), d.SHA256)
			assert.Equal(t, int64(buf.Len()), d.Size)

			dst := filepath.Join(t.TempDir(), "out")
			st, err := droplet.Unpack(t.Context(), bytes.NewReader(buf.Bytes()), dst, droplet.Limits{})
			require.NoError(t, err)
			assert.Equal(t, format, st.Format)
			assert.Equal(t, 3, st.Symlinks)
			assert.Equal(t, 1, st.Hardlinks)
			assert.Equal(t, snapshot(t, src), snapshot(t, dst), "the tree comes back as it was")

			fi, err := os.Stat(dst)
			require.NoError(t, err)
			assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())
			a, err := os.Stat(filepath.Join(dst, "app/bin/start"))
			require.NoError(t, err)
			b, err := os.Stat(filepath.Join(dst, "app/bin/start-again"))
			require.NoError(t, err)
			assert.True(t, os.SameFile(a, b), "the hard link is kept")
		})
	}
}

func TestPackLayout(t *testing.T) {
	src := t.TempDir()
	writeSmallTree(t, src)
	var buf bytes.Buffer
	_, err := droplet.Pack(t.Context(), src, &buf)
	require.NoError(t, err)
	names := tarNames(t, buf.Bytes())
	// Sorted as GNU tar --sort=name sorts: by path components.
	assert.True(t, sort.SliceIsSorted(names, func(i, j int) bool {
		a := strings.Split(strings.TrimSuffix(names[i], "/"), "/")
		b := strings.Split(strings.TrimSuffix(names[j], "/"), "/")
		return slices.Compare(a, b) < 0
	}), "entries are sorted: %q", names)
	assert.Contains(t, names, "app/")
	assert.Contains(t, names, "app/héllo wörld/日本.txt")
	assert.Contains(t, names, "staging_info.yml")
	assert.NotContains(t, names, "./", "the root has no entry")

	// Owners are normalised and GNU tar reads the droplet.
	zr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		assert.Zero(t, hdr.Uid, hdr.Name)
		assert.Zero(t, hdr.Gid, hdr.Name)
		assert.Empty(t, hdr.Uname, hdr.Name)
	}
	if tarPath, err := exec.LookPath("tar"); err == nil {
		cmd := exec.Command(tarPath, "-tzf", "-")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "app/héllo wörld/日本.txt")
	}
}

func TestPackDeterministic(t *testing.T) {
	src := t.TempDir()
	_, err := droplettest.WriteTree(src, droplettest.TreeSpec{Bytes: 2 << 20})
	require.NoError(t, err)
	epoch := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	pack := func(opts ...droplet.PackOption) droplet.Digest {
		d, err := droplet.Pack(t.Context(), src, io.Discard, opts...)
		require.NoError(t, err)
		return d
	}
	first := pack(droplet.WithModTime(epoch))
	assert.Equal(t, first, pack(droplet.WithModTime(epoch), droplet.WithConcurrency(1)), "concurrency does not change the bytes")
	assert.Equal(t, first, pack(droplet.WithModTime(epoch), droplet.WithConcurrency(7)))

	// Touching every file changes nothing with WithModTime...
	later := time.Now().Add(time.Hour)
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			err = os.Chtimes(p, later, later)
		}
		return err
	}))
	assert.Equal(t, first, pack(droplet.WithModTime(epoch)))
	// ... but does without it.
	assert.NotEqual(t, first.SHA1, pack().SHA1)

	// Another tree built the same way gives the same droplet.
	src2 := t.TempDir()
	_, err = droplettest.WriteTree(src2, droplettest.TreeSpec{Bytes: 2 << 20})
	require.NoError(t, err)
	d2, err := droplet.Pack(t.Context(), src2, io.Discard, droplet.WithModTime(epoch))
	require.NoError(t, err)
	assert.Equal(t, first, d2)
}

func TestPackLevels(t *testing.T) {
	src := t.TempDir()
	_, err := droplettest.WriteTree(src, droplettest.TreeSpec{Bytes: 2 << 20, BinaryShare: -1})
	require.NoError(t, err)
	fast, err := droplet.Pack(t.Context(), src, io.Discard, droplet.WithLevel(1))
	require.NoError(t, err)
	small, err := droplet.Pack(t.Context(), src, io.Discard, droplet.WithLevel(9))
	require.NoError(t, err)
	assert.Less(t, small.Size, fast.Size)
	z, err := droplet.Pack(t.Context(), src, io.Discard, droplet.WithFormat(droplet.Zstd), droplet.WithLevel(7))
	require.NoError(t, err)
	assert.Less(t, z.Size, fast.Size)

	for _, opts := range [][]droplet.PackOption{
		{droplet.WithLevel(10)},
		{droplet.WithLevel(-3)},
		{droplet.WithFormat(droplet.Zstd), droplet.WithLevel(23)},
		{droplet.WithFormat(droplet.Uncompressed)},
	} {
		_, err := droplet.Pack(t.Context(), src, io.Discard, opts...)
		assert.ErrorIs(t, err, droplet.ErrInvalid)
	}
}

func TestPackRefuses(t *testing.T) {
	t.Run("not a directory", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		_, err := droplet.Pack(t.Context(), f, io.Discard)
		assert.ErrorIs(t, err, droplet.ErrInvalid)
	})
	t.Run("missing", func(t *testing.T) {
		_, err := droplet.Pack(t.Context(), filepath.Join(t.TempDir(), "nope"), io.Discard)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("fifo", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("needs mkfifo")
		}
		src := t.TempDir()
		require.NoError(t, syscall.Mkfifo(filepath.Join(src, "pipe"), 0o600))
		_, err := droplet.Pack(t.Context(), src, io.Discard)
		var ee *droplet.EntryError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "pipe", ee.Name)
		assert.ErrorIs(t, err, droplet.ErrNotAllowed)
	})
	t.Run("name not UTF-8", func(t *testing.T) {
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "caf\xe9"), nil, 0o644); err != nil {
			t.Skipf("the file system refuses the name: %v", err)
		}
		_, err := droplet.Pack(t.Context(), src, io.Discard)
		var ee *droplet.EntryError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "caf\xe9", ee.Name)
		assert.ErrorIs(t, err, droplet.ErrInvalid)
	})
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestPackErrors(t *testing.T) {
	src := t.TempDir()
	_, err := droplettest.WriteTree(src, droplettest.TreeSpec{Bytes: 4 << 20})
	require.NoError(t, err)
	t.Run("writer fails", func(t *testing.T) {
		_, err := droplet.Pack(t.Context(), src, &failWriter{n: 1 << 20})
		assert.ErrorIs(t, err, errDiskFull)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := droplet.Pack(ctx, src, io.Discard)
		assert.ErrorIs(t, err, context.Canceled)
	})
}
