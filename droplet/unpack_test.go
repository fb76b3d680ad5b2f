package droplet_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

// sandbox is a directory holding the destination of an Unpack and a
// canary file beside it that no hostile archive may touch.
type sandbox struct {
	root   string // holds dst and the canary
	dst    string // does not exist yet
	canary string
}

func newSandbox(t *testing.T) sandbox {
	t.Helper()
	root := t.TempDir()
	s := sandbox{root: root, dst: filepath.Join(root, "dst"), canary: filepath.Join(root, "canary")}
	require.NoError(t, os.WriteFile(s.canary, []byte("intact"), 0o644))
	return s
}

// checkClean asserts that only the canary, intact, is left in the
// sandbox: no partial tree, no temporary directory, nothing outside.
func (s sandbox) checkClean(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(s.root)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"canary"}, names, "nothing is left behind")
	b, err := os.ReadFile(s.canary)
	require.NoError(t, err)
	assert.Equal(t, "intact", string(b))
}

func TestUnpackHostile(t *testing.T) {
	for _, h := range droplettest.HostileTarballs(t) {
		t.Run(h.Name, func(t *testing.T) {
			s := newSandbox(t)
			start := time.Now()
			_, err := droplet.Unpack(t.Context(), bytes.NewReader(h.Data), s.dst, h.Limits)
			require.Error(t, err)
			assert.ErrorIs(t, err, h.Err)
			var ee *droplet.EntryError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, h.Entry, ee.Name)
			assert.Less(t, time.Since(start), 10*time.Second)
			s.checkClean(t)
		})
	}
}

func TestUnpackHostileIntoEmptyDir(t *testing.T) {
	// An existing empty destination is emptied again on failure.
	for _, h := range droplettest.HostileTarballs(t)[:6] {
		t.Run(h.Name, func(t *testing.T) {
			s := newSandbox(t)
			require.NoError(t, os.Mkdir(s.dst, 0o750))
			_, err := droplet.Unpack(t.Context(), bytes.NewReader(h.Data), s.dst, h.Limits)
			assert.ErrorIs(t, err, h.Err)
			ents, err := os.ReadDir(s.dst)
			require.NoError(t, err)
			assert.Empty(t, ents)
			fi, err := os.Stat(s.dst)
			require.NoError(t, err)
			assert.Equal(t, fs.FileMode(0o750), fi.Mode().Perm(), "the destination itself is kept as it was")
		})
	}
}

func TestUnpackFormats(t *testing.T) {
	entries := []droplettest.Entry{
		{Name: "app/", Type: tar.TypeDir},
		{Name: "app/start", Body: "#!/bin/sh\n", Mode: 0o755},
		{Name: "./staging_info.yml", Body: "{}"},
	}
	for _, f := range []droplet.Format{droplet.Gzip, droplet.Zstd, droplet.Uncompressed} {
		t.Run(f.String(), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			st, err := droplet.Unpack(t.Context(), bytes.NewReader(droplettest.Tarball(t, f, entries...)), dst, droplet.Limits{})
			require.NoError(t, err)
			assert.Equal(t, f, st.Format)
			assert.Equal(t, 2, st.Files)
			b, err := os.ReadFile(filepath.Join(dst, "app/start"))
			require.NoError(t, err)
			assert.Equal(t, "#!/bin/sh\n", string(b))
		})
	}
}

func TestUnpackDestination(t *testing.T) {
	data := droplettest.Tarball(t, droplet.Gzip, droplettest.Entry{Name: "app/x", Body: "x"})
	t.Run("empty directory", func(t *testing.T) {
		dst := t.TempDir()
		_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{})
		require.NoError(t, err)
		assert.FileExists(t, filepath.Join(dst, "app/x"))
	})
	t.Run("not empty", func(t *testing.T) {
		dst := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dst, "keep"), []byte("mine"), 0o644))
		_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{})
		assert.ErrorIs(t, err, droplet.ErrExist)
		b, err := os.ReadFile(filepath.Join(dst, "keep"))
		require.NoError(t, err)
		assert.Equal(t, "mine", string(b))
		assert.NoFileExists(t, filepath.Join(dst, "app/x"))
	})
	t.Run("a file", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(dst, nil, 0o644))
		_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{})
		assert.ErrorIs(t, err, droplet.ErrExist)
	})
	t.Run("parent missing", func(t *testing.T) {
		_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), filepath.Join(t.TempDir(), "a", "b"), droplet.Limits{})
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("relative", func(t *testing.T) {
		t.Chdir(t.TempDir())
		_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), "rel", droplet.Limits{})
		require.NoError(t, err)
		assert.FileExists(t, filepath.Join("rel", "app/x"))
	})
}

func TestUnpackSetuid(t *testing.T) {
	data := droplettest.Tarball(t, droplet.Gzip,
		droplettest.Entry{Name: "suid", Body: "x", Mode: 0o4755},
		droplettest.Entry{Name: "sgid", Body: "x", Mode: 0o2755},
		droplettest.Entry{Name: "sticky/", Type: tar.TypeDir, Mode: 0o1777},
	)
	modes := func(dst string) []fs.FileMode {
		var out []fs.FileMode
		for _, n := range []string{"suid", "sgid", "sticky"} {
			fi, err := os.Lstat(filepath.Join(dst, n))
			require.NoError(t, err)
			out = append(out, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return out
	}
	dst := filepath.Join(t.TempDir(), "d")
	_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{})
	require.NoError(t, err)
	assert.Equal(t, []fs.FileMode{0o755, 0o755, 0o777 | fs.ModeSticky}, modes(dst), "setuid and setgid are stripped")

	dst = filepath.Join(t.TempDir(), "d")
	_, err = droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{}, droplet.KeepSetuid())
	require.NoError(t, err)
	assert.Equal(t, []fs.FileMode{0o755 | fs.ModeSetuid, 0o755 | fs.ModeSetgid, 0o777 | fs.ModeSticky}, modes(dst))
}

func TestUnpackTimes(t *testing.T) {
	when := time.Date(2015, 6, 7, 8, 9, 10, 0, time.UTC)
	data := droplettest.Tarball(t, droplet.Gzip,
		droplettest.Entry{Name: "dir/", Type: tar.TypeDir, ModTime: when},
		droplettest.Entry{Name: "dir/file", Body: "x", ModTime: when},
	)
	dst := filepath.Join(t.TempDir(), "d")
	_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{})
	require.NoError(t, err)
	for _, n := range []string{"dir", "dir/file"} {
		fi, err := os.Stat(filepath.Join(dst, n))
		require.NoError(t, err)
		assert.True(t, fi.ModTime().Equal(when), "%s: %v", n, fi.ModTime())
	}
}

func TestUnpackManyFiles(t *testing.T) {
	// Enough files, in enough directories, to exercise the parallel
	// writers and the directory handle cache; with duplicates and a link
	// to a file just written.
	var entries []droplettest.Entry
	for d := range 80 {
		dir := "app/d" + strings.Repeat("x", d%5) + "/" + string(rune('a'+d%26)) + "/" + itoa(d)
		for f := range 30 {
			entries = append(entries, droplettest.Entry{Name: dir + "/f" + itoa(f), Body: dir + itoa(f)})
		}
	}
	entries = append(entries,
		droplettest.Entry{Name: "app/dup", Body: "first"},
		droplettest.Entry{Name: "app/dup-link", Type: tar.TypeLink, Link: "app/dup"},
		droplettest.Entry{Name: "app/dup", Body: "second"},
		droplettest.Entry{Name: "app/becomes-dir", Body: "file"},
		droplettest.Entry{Name: "app/becomes-dir/inner", Body: "inner"},
	)
	dst := filepath.Join(t.TempDir(), "d")
	st, err := droplet.Unpack(t.Context(), bytes.NewReader(droplettest.Tarball(t, droplet.Gzip, entries...)), dst, droplet.Limits{})
	if err != nil {
		// "app/becomes-dir/inner" below a file: refused like tar does.
		var ee *droplet.EntryError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "app/becomes-dir/inner", ee.Name)
		return
	}
	t.Fatalf("a file below a file was extracted: %+v", st)
}

func TestUnpackDuplicatesAndLinks(t *testing.T) {
	var entries []droplettest.Entry
	for i := range 200 {
		entries = append(entries, droplettest.Entry{Name: "app/many/f" + itoa(i), Body: itoa(i)})
	}
	entries = append(entries,
		droplettest.Entry{Name: "app/dup", Body: "first"},
		droplettest.Entry{Name: "app/dup-link", Type: tar.TypeLink, Link: "app/dup"},
		droplettest.Entry{Name: "app/dup", Body: "second"},
		droplettest.Entry{Name: "app/was-file", Body: "file"},
		droplettest.Entry{Name: "app/was-file", Type: tar.TypeSymlink, Link: "many"},
		droplettest.Entry{Name: "app/was-link", Type: tar.TypeSymlink, Link: "many"},
		droplettest.Entry{Name: "app/was-link", Body: "now a file"},
	)
	dst := filepath.Join(t.TempDir(), "d")
	st, err := droplet.Unpack(t.Context(), bytes.NewReader(droplettest.Tarball(t, droplet.Gzip, entries...)), dst, droplet.Limits{})
	require.NoError(t, err)
	assert.Equal(t, 204, st.Files)
	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join(dst, n))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "second", read("app/dup"), "the later entry wins")
	assert.Equal(t, "first", read("app/dup-link"), "the link kept the first file")
	target, err := os.Readlink(filepath.Join(dst, "app/was-file"))
	require.NoError(t, err)
	assert.Equal(t, "many", target)
	assert.Equal(t, "now a file", read("app/was-link"))
	for i := range 200 {
		assert.Equal(t, itoa(i), read("app/many/f"+itoa(i)))
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestUnpackCorrupt(t *testing.T) {
	src := t.TempDir()
	_, err := droplettest.WriteTree(src, droplettest.TreeSpec{Bytes: 3 << 20})
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = droplet.Pack(t.Context(), src, &buf)
	require.NoError(t, err)
	good := buf.Bytes()

	cases := map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)/2],
		"flipped":   flip(good, len(good)/3),
		"garbage":   bytes.Repeat([]byte("not a droplet "), 100),
		"trailer":   flip(good, len(good)-3),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := droplet.Unpack(t.Context(), bytes.NewReader(data), s.dst, droplet.Limits{})
			assert.ErrorIs(t, err, droplet.ErrBadArchive)
			s.checkClean(t)
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x55
	return c
}

// errReader returns data, then an error.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestUnpackReadErrorAndCancel(t *testing.T) {
	src := t.TempDir()
	_, err := droplettest.WriteTree(src, droplettest.TreeSpec{Bytes: 2 << 20})
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = droplet.Pack(t.Context(), src, &buf)
	require.NoError(t, err)

	t.Run("read error", func(t *testing.T) {
		s := newSandbox(t)
		boom := errors.New("connection reset")
		_, err := droplet.Unpack(t.Context(), &errReader{r: bytes.NewReader(buf.Bytes()[:buf.Len()/2]), err: boom}, s.dst, droplet.Limits{})
		assert.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, droplet.ErrBadArchive)
		s.checkClean(t)
	})
	t.Run("cancelled", func(t *testing.T) {
		s := newSandbox(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := droplet.Unpack(ctx, bytes.NewReader(buf.Bytes()), s.dst, droplet.Limits{})
		assert.ErrorIs(t, err, context.Canceled)
		s.checkClean(t)
	})
	t.Run("cancelled midway", func(t *testing.T) {
		s := newSandbox(t)
		ctx, cancel := context.WithCancel(t.Context())
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write(buf.Bytes()[:buf.Len()/2])
			cancel()
			pw.CloseWithError(context.Canceled)
		}()
		_, err := droplet.Unpack(ctx, pr, s.dst, droplet.Limits{})
		assert.ErrorIs(t, err, context.Canceled)
		s.checkClean(t)
	})
}

func TestUnpackLargeFile(t *testing.T) {
	// A file larger than the writers' buffers, streamed, among small ones.
	data := droplettest.Tarball(t, droplet.Gzip,
		droplettest.Entry{Name: "a", Body: "before"},
		droplettest.Entry{Name: "big", Zeros: 9 << 20},
		droplettest.Entry{Name: "z", Body: "after"},
	)
	dst := filepath.Join(t.TempDir(), "d")
	st, err := droplet.Unpack(t.Context(), bytes.NewReader(data), dst, droplet.Limits{})
	require.NoError(t, err)
	assert.Equal(t, int64(9<<20+11), st.Bytes)
	fi, err := os.Stat(filepath.Join(dst, "big"))
	require.NoError(t, err)
	assert.Equal(t, int64(9<<20), fi.Size())
}

func TestEntryErrorMessage(t *testing.T) {
	_, err := droplet.Unpack(t.Context(), bytes.NewReader(droplettest.Tarball(t, droplet.Gzip,
		droplettest.Entry{Name: "../evil", Body: "x"})), filepath.Join(t.TempDir(), "d"), droplet.Limits{})
	require.Error(t, err)
	assert.Equal(t, `droplet: entry "../evil": unsafe path: name escapes the destination`, err.Error())
}
