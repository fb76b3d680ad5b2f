package archive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/internal/archive"
)

// The options that make extraction strict (RefuseAbsolute, NoFollow,
// RefuseSpecial, MaxDepth), the Header hook of Create, and parallel
// writers.

func TestExtractRefuseAbsolute(t *testing.T) {
	for _, name := range []string{"/etc/evil", "//twice", "/"} {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			typ := byte(tar.TypeReg)
			if name == "/" {
				typ = tar.TypeDir
			}
			data := tarball(t, ent{name: "ok", body: "ok"}, ent{name: name, typ: typ, body: ""})
			_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{RefuseAbsolute: true})
			requireEntryErr(t, err, archive.ErrUnsafePath, name)
			s.checkOutside(t)
		})
	}
}

func TestExtractNoFollow(t *testing.T) {
	cases := []struct {
		name  string
		ents  []ent
		entry string // refused with NoFollow; "" when the default also refuses
	}{
		{"file through a link inside", []ent{
			{name: "usr/lib/", typ: tar.TypeDir},
			{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
			{name: "lib/x", body: "x"},
		}, "lib/x"},
		{"directory through a link inside", []ent{
			{name: "real/", typ: tar.TypeDir},
			{name: "alias", typ: tar.TypeSymlink, link: "real"},
			{name: "alias/sub/", typ: tar.TypeDir},
		}, "alias/sub/"},
		{"deep through a link", []ent{
			{name: "a/b/c/", typ: tar.TypeDir},
			{name: "a/l", typ: tar.TypeSymlink, link: "b"},
			{name: "a/l/c/f", body: "x"},
		}, "a/l/c/f"},
		{"hard link through a link", []ent{
			{name: "real/f", body: "x"},
			{name: "alias", typ: tar.TypeSymlink, link: "real"},
			{name: "h", typ: tar.TypeLink, link: "alias/f"},
		}, "h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tarball(t, tc.ents...)
			s := newSandbox(t)
			_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
			require.NoError(t, err, "followed by default, as GNU tar does")
			s = newSandbox(t)
			_, err = archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{NoFollow: true})
			requireEntryErr(t, err, archive.ErrUnsafePath, tc.entry)
			assert.Contains(t, err.Error(), "symbolic link")
			s.checkOutside(t)
		})
	}
	t.Run("links themselves are created", func(t *testing.T) {
		s := newSandbox(t)
		data := tarball(t,
			ent{name: "abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
			ent{name: "up", typ: tar.TypeSymlink, link: "../../.."},
			ent{name: "up", typ: tar.TypeSymlink, link: "replaced"},
			ent{name: "d/", typ: tar.TypeDir},
			ent{name: "d/f", body: "x"},
		)
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{NoFollow: true})
		require.NoError(t, err)
		assert.Equal(t, 3, st.Symlinks)
		l, err := os.Readlink(filepath.Join(s.dest, "up"))
		require.NoError(t, err)
		assert.Equal(t, "replaced", l, "a link at the entry's own name is replaced, not followed")
	})
	t.Run("link already in the destination", func(t *testing.T) {
		s := newSandbox(t)
		require.NoError(t, os.Mkdir(filepath.Join(s.dest, "real"), 0o755))
		require.NoError(t, os.Symlink("real", filepath.Join(s.dest, "pre")))
		_, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ent{name: "pre/f", body: "x"})), s.dest, archive.Options{NoFollow: true})
		requireEntryErr(t, err, archive.ErrUnsafePath, "pre/f")
		assert.NoFileExists(t, filepath.Join(s.dest, "real/f"))
	})
}

func TestExtractRefuseSpecial(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  byte
	}{{"null", tar.TypeChar}, {"sda", tar.TypeBlock}, {"fifo", tar.TypeFifo}, {"odd", 'Z'}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			data := tarball(t, ent{name: "ok", body: "x"}, ent{name: tc.name, typ: tc.typ})
			st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{RefuseSpecial: true})
			requireEntryErr(t, err, archive.ErrNotAllowed, tc.name)
			assert.Equal(t, 1, st.Files)
			assert.Zero(t, st.Skipped)
		})
	}
	t.Run("allowed devices are not refused", func(t *testing.T) {
		s := newSandbox(t)
		data := tarball(t, ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600}, ent{name: "/", typ: tar.TypeDir})
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{RefuseSpecial: true, AllowDevices: true})
		require.NoError(t, err)
		assert.Equal(t, 1, st.Devices)
		assert.Equal(t, 1, st.Skipped, "the destination's own entry is still skipped quietly")
	})
}

func TestExtractMaxDepth(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("d/", n-1) + "f" }
	cases := []struct {
		name   string
		limits archive.Limits
		depth  int
		ok     bool
	}{
		{"default allows 1024", archive.Limits{}, archive.DefaultMaxDepth, true},
		{"default refuses 1025", archive.Limits{}, archive.DefaultMaxDepth + 1, false},
		{"custom", archive.Limits{MaxDepth: 3}, 4, false},
		{"custom exact", archive.Limits{MaxDepth: 3}, 3, true},
		{"no limit", archive.Limits{MaxDepth: -1}, 1100, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			name := deep(tc.depth)
			if tc.depth > 400 {
				// Beyond PATH_MAX for the kernel; only the check matters.
				name = strings.Repeat("d/", tc.depth)
				name = name[:len(name)-1]
			}
			data := headerOnly(t, &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
			data = append(data, make([]byte, 1024)...) // end-of-archive marker
			_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Limits: tc.limits})
			if tc.ok {
				if err != nil {
					assert.NotErrorIs(t, err, archive.ErrLimitExceeded) // may hit ENAMETOOLONG instead
				}
				return
			}
			requireEntryErr(t, err, archive.ErrLimitExceeded, name)
			assert.Empty(t, dirNames(t, s.dest), "refused before anything was created")
		})
	}
}

func TestCreateHeaderHook(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a/f"), []byte("x"), 0o644))
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	var seen []string
	var buf bytes.Buffer
	err := archive.Create(t.Context(), &buf, src, archive.CreateOptions{Header: func(h *tar.Header) error {
		seen = append(seen, h.Name)
		h.Uid, h.Gid, h.ModTime = 42, 43, when
		return nil
	}})
	require.NoError(t, err)
	assert.Equal(t, []string{"a/", "a/f"}, seen)
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		assert.Equal(t, 42, h.Uid)
		assert.True(t, h.ModTime.Equal(when))
	}

	boom := errors.New("refused")
	err = archive.Create(t.Context(), io.Discard, src, archive.CreateOptions{Header: func(h *tar.Header) error {
		if h.Name == "a/f" {
			return boom
		}
		return nil
	}})
	assert.ErrorIs(t, err, boom)
	var ee *archive.EntryError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "a/f", ee.Name)

	err = archive.Create(t.Context(), io.Discard, src, archive.CreateOptions{Header: func(h *tar.Header) error {
		h.Name = "renamed"
		return nil
	}})
	assert.Error(t, err, "the hook may not rename")
}

// TestExtractWorkers checks that parallel writers give the result of a
// serial extraction, whatever the order of the entries.
func TestExtractWorkers(t *testing.T) {
	var many []ent
	for d := range 100 {
		for f := range 12 {
			many = append(many, ent{name: fmt.Sprintf("d%02d/sub%d/f%02d", d, d%3, f), body: fmt.Sprint(d, f)})
		}
	}
	big := strings.Repeat("B", 3<<20) // streamed by the extracting goroutine
	cases := map[string][]ent{
		"many": many,
		"duplicates and links": {
			{name: "dup", body: "first"},
			{name: "link", typ: tar.TypeLink, link: "dup"},
			{name: "dup", body: "second"},
			{name: "sym", body: "file"},
			{name: "sym", typ: tar.TypeSymlink, link: "dup"},
			{name: "was-link", typ: tar.TypeSymlink, link: "dup"},
			{name: "was-link", body: "now a file"},
			{name: "dir-then-file/", typ: tar.TypeDir},
			{name: "dir-then-file/x", body: "x"},
			{name: "dir-then-file", body: "a file now"},
			{name: "big", body: big},
			{name: "after-big", body: "small"},
			{name: "ro/", typ: tar.TypeDir, mode: 0o555},
			{name: "ro/f", body: "in a read-only directory"},
		},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			data := tarball(t, ents...)
			serial := newSandbox(t)
			st1, err := archive.Extract(t.Context(), bytes.NewReader(data), serial.dest, archive.Options{})
			require.NoError(t, err)
			parallel := newSandbox(t)
			st2, err := archive.Extract(t.Context(), bytes.NewReader(data), parallel.dest, archive.Options{Workers: 4})
			require.NoError(t, err)
			assert.Equal(t, st1, st2)
			assert.Equal(t, tree(t, serial.dest), tree(t, parallel.dest))
			parallel.checkOutside(t)
		})
	}
	t.Run("names taken in the destination", func(t *testing.T) {
		ents := []ent{{name: "was-dir", body: "file"}, {name: "was-file", body: "new"}, {name: "was-link", body: "file"}}
		for i := range 50 {
			ents = append(ents, ent{name: fmt.Sprintf("x/f%d", i), body: "x"})
		}
		prepare := func(s sandbox) {
			require.NoError(t, os.MkdirAll(filepath.Join(s.dest, "was-dir/inner"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(s.dest, "was-file"), []byte("old"), 0o644))
			require.NoError(t, os.Symlink(filepath.Join(s.sibling, "canary"), filepath.Join(s.dest, "was-link")))
		}
		data := tarball(t, ents...)
		serial, parallel := newSandbox(t), newSandbox(t)
		prepare(serial)
		prepare(parallel)
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), serial.dest, archive.Options{})
		require.NoError(t, err)
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), parallel.dest, archive.Options{Workers: 3})
		require.NoError(t, err)
		assert.Equal(t, 53, st.Files)
		assert.Equal(t, tree(t, serial.dest), tree(t, parallel.dest))
		parallel.checkOutside(t)
	})
	t.Run("a writer's error stops extraction", func(t *testing.T) {
		long := strings.Repeat("n", 300) // longer than NAME_MAX
		var ents []ent
		for i := range 20 {
			ents = append(ents, ent{name: fmt.Sprintf("a/f%d", i), body: "x"})
		}
		ents = append(ents, ent{name: "a/" + long, body: "x"})
		for i := range 2000 {
			ents = append(ents, ent{name: fmt.Sprintf("b/f%d", i), body: "x"})
		}
		s := newSandbox(t)
		st, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ents...)), s.dest, archive.Options{Workers: 2})
		var ee *archive.EntryError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "a/"+long, ee.Name)
		assert.Less(t, st.Files, 2020, "extraction stopped")
	})
	t.Run("file below a file", func(t *testing.T) {
		s := newSandbox(t)
		data := tarball(t, ent{name: "f", body: "x"}, ent{name: "f/g", body: "y"})
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Workers: 2})
		var ee *archive.EntryError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "f/g", ee.Name)
	})
}
