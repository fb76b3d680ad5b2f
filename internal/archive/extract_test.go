package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/internal/archive"
	"github.com/paaskit/paaskit/internal/testutil"
)

// requireEntryErr asserts that err is an *EntryError for name wrapping
// sentinel.
func requireEntryErr(t *testing.T, err error, sentinel error, name string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, sentinel)
	var ee *archive.EntryError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, name, ee.Name)
}

func TestExtractBasic(t *testing.T) {
	s := newSandbox(t)
	data := tarball(t,
		ent{name: "usr/", typ: tar.TypeDir},
		ent{name: "usr/bin/", typ: tar.TypeDir},
		ent{name: "usr/bin/tool", body: "#!/bin/sh\n", mode: 0o755},
		ent{name: "bin", typ: tar.TypeSymlink, link: "usr/bin"},
		ent{name: "etc/mtab", typ: tar.TypeSymlink, link: "/proc/self/mounts"},
		ent{name: "etc/up", typ: tar.TypeSymlink, link: "../../../../.."},
		ent{name: "usr/bin/tool2", typ: tar.TypeLink, link: "usr/bin/tool"},
		ent{name: "./empty", body: ""},
	)
	st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
	require.NoError(t, err)
	assert.Equal(t, archive.Stats{Files: 2, Dirs: 2, Symlinks: 3, Hardlinks: 1, Bytes: 10}, st)

	got := tree(t, s.dest)
	assert.Equal(t, map[string]string{
		"usr":           "drwxr-xr-x",
		"usr/bin":       "drwxr-xr-x",
		"usr/bin/tool":  "-rwxr-xr-x #!/bin/sh\n",
		"usr/bin/tool2": "-rwxr-xr-x #!/bin/sh\n",
		"bin":           "Lrwxrwxrwx -> usr/bin",
		"etc":           "drwxr-xr-x",
		"etc/mtab":      "Lrwxrwxrwx -> /proc/self/mounts",
		"etc/up":        "Lrwxrwxrwx -> ../../../../..",
		"empty":         "-rw-r--r-- ",
	}, got)
	a, err := os.Stat(filepath.Join(s.dest, "usr/bin/tool"))
	require.NoError(t, err)
	b, err := os.Stat(filepath.Join(s.dest, "usr/bin/tool2"))
	require.NoError(t, err)
	assert.True(t, os.SameFile(a, b), "hard link is not the same inode")
	s.checkOutside(t)
}

func TestExtractZipSlip(t *testing.T) {
	for _, name := range []string{"../evil", "a/../../evil", "./../evil", "a/b/../../../evil", "..", "../sibling/canary"} {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			data := tarball(t, ent{name: name, body: "pwned"})
			_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
			requireEntryErr(t, err, archive.ErrUnsafePath, name)
			assert.Empty(t, dirNames(t, s.dest))
			s.checkOutside(t)
		})
	}
}

func TestExtractAbsoluteNameIsStripped(t *testing.T) {
	s := newSandbox(t)
	data := tarball(t,
		ent{name: "/etc/evil", body: "inside"},
		ent{name: "//twice", body: "inside too"},
		ent{name: "/", typ: tar.TypeDir, mode: 0o777},
	)
	st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, st.Skipped, "the destination's own entry is skipped")
	b, err := os.ReadFile(filepath.Join(s.dest, "etc/evil"))
	require.NoError(t, err)
	assert.Equal(t, "inside", string(b))
	b, err = os.ReadFile(filepath.Join(s.dest, "twice"))
	require.NoError(t, err)
	assert.Equal(t, "inside too", string(b))
	fi, err := os.Stat(s.dest)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm(), "the destination's mode is the caller's")
	s.checkOutside(t)
}

func TestExtractSymlinkEscape(t *testing.T) {
	// Each case's last entry is the one that must be refused.
	cases := []struct {
		name string
		ents func(s sandbox) []ent
	}{
		{
			name: "absolute link to sibling",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "link", typ: tar.TypeSymlink, link: s.sibling},
					{name: "link/evil", body: "pwned"},
				}
			},
		},
		{
			name: "link to root",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "link", typ: tar.TypeSymlink, link: "/"},
					{name: "link" + s.sibling + "/evil", body: "pwned"},
				}
			},
		},
		{
			name: "relative link up",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "link", typ: tar.TypeSymlink, link: "../.."},
					{name: "link/" + filepath.Base(s.base) + "/sibling/evil", body: "pwned"},
				}
			},
		},
		{
			name: "nested link to sibling",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "a/b/", typ: tar.TypeDir},
					{name: "a/b/link", typ: tar.TypeSymlink, link: "../../../sibling"},
					{name: "a/b/link/evil", body: "pwned"},
				}
			},
		},
		{
			name: "overwrite canary through link",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "link", typ: tar.TypeSymlink, link: "../sibling"},
					{name: "link/canary", body: "pwned"},
				}
			},
		},
		{
			name: "chain of links",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "l2", typ: tar.TypeSymlink, link: "../sibling"},
					{name: "l1", typ: tar.TypeSymlink, link: "l2"},
					{name: "l1/evil", body: "pwned"},
				}
			},
		},
		{
			name: "directory through link",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "link", typ: tar.TypeSymlink, link: "../sibling"},
					{name: "link/newdir/", typ: tar.TypeDir},
				}
			},
		},
		{
			name: "symlink through link",
			ents: func(s sandbox) []ent {
				return []ent{
					{name: "link", typ: tar.TypeSymlink, link: "../sibling"},
					{name: "link/canary", typ: tar.TypeSymlink, link: "/etc/passwd"},
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			ents := tc.ents(s)
			want := ents[len(ents)-1].name
			_, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ents...)), s.dest, archive.Options{})
			requireEntryErr(t, err, archive.ErrUnsafePath, want)
			s.checkOutside(t)
		})
	}
}

func TestExtractPreexistingSymlinkEscape(t *testing.T) {
	t.Run("directory link", func(t *testing.T) {
		s := newSandbox(t)
		require.NoError(t, os.Symlink(s.sibling, filepath.Join(s.dest, "link")))
		require.NoError(t, os.Symlink("../sibling", filepath.Join(s.dest, "rel")))
		for _, name := range []string{"link/evil", "link/canary", "rel/evil", "rel/sub/evil"} {
			_, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ent{name: name, body: "pwned"})), s.dest, archive.Options{})
			requireEntryErr(t, err, archive.ErrUnsafePath, name)
		}
		s.checkOutside(t)
	})
	t.Run("file link is replaced, not followed", func(t *testing.T) {
		s := newSandbox(t)
		victim := filepath.Join(s.dest, "victim")
		require.NoError(t, os.Symlink(filepath.Join(s.sibling, "canary"), victim))
		data := tarball(t,
			ent{name: "victim", body: "new content"},
			ent{name: "dir", typ: tar.TypeDir},
		)
		require.NoError(t, os.Symlink(s.sibling, filepath.Join(s.dest, "dir")))
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
		require.NoError(t, err)
		fi, err := os.Lstat(victim)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular())
		b, err := os.ReadFile(victim)
		require.NoError(t, err)
		assert.Equal(t, "new content", string(b))
		fi, err = os.Lstat(filepath.Join(s.dest, "dir"))
		require.NoError(t, err)
		assert.True(t, fi.IsDir(), "a directory entry replaces a link, it does not chmod its target")
		s.checkOutside(t)
	})
}

func TestExtractHardlinkEscape(t *testing.T) {
	cases := []struct {
		name string
		link func(s sandbox) string
		pre  func(t *testing.T, s sandbox)
	}{
		{name: "dotdot", link: func(sandbox) string { return "../sibling/canary" }},
		{name: "inner dotdot", link: func(sandbox) string { return "a/../../sibling/canary" }},
		{name: "absolute host path", link: func(sandbox) string { return "/etc/passwd" }},
		{name: "absolute sibling", link: func(s sandbox) string { return filepath.Join(s.sibling, "canary") }},
		{
			name: "through existing link",
			link: func(sandbox) string { return "out/canary" },
			pre: func(t *testing.T, s sandbox) {
				require.NoError(t, os.Symlink("../sibling", filepath.Join(s.dest, "out")))
			},
		},
		{
			name: "to a link pointing outside",
			link: func(sandbox) string { return "out" },
			pre: func(t *testing.T, s sandbox) {
				require.NoError(t, os.Symlink(filepath.Join(s.sibling, "canary"), filepath.Join(s.dest, "out")))
			},
		},
		{
			name: "to a relative link pointing outside",
			link: func(sandbox) string { return "d/out" },
			pre: func(t *testing.T, s sandbox) {
				require.NoError(t, os.Mkdir(filepath.Join(s.dest, "d"), 0o755))
				require.NoError(t, os.Symlink("../../sibling/canary", filepath.Join(s.dest, "d/out")))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			if tc.pre != nil {
				tc.pre(t, s)
			}
			data := tarball(t,
				ent{name: "h", typ: tar.TypeLink, link: tc.link(s)},
				ent{name: "h", body: "pwned"}, // would write through the link
			)
			_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
			requireEntryErr(t, err, archive.ErrUnsafePath, "h")
			_, err = os.Lstat(filepath.Join(s.dest, "h"))
			assert.ErrorIs(t, err, fs.ErrNotExist)
			s.checkOutside(t)
		})
	}
}

func TestExtractFollowsLinksInside(t *testing.T) {
	s := newSandbox(t)
	data := tarball(t,
		ent{name: "usr/lib/", typ: tar.TypeDir},
		ent{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		ent{name: "lib/libc.so", body: "elf"},
	)
	_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(s.dest, "usr/lib/libc.so"))
	require.NoError(t, err)
	assert.Equal(t, "elf", string(b))

	// An absolute link is outside the destination as the host sees it,
	// even if it would be inside once the destination is a container's /.
	s = newSandbox(t)
	data = tarball(t,
		ent{name: "usr/lib/", typ: tar.TypeDir},
		ent{name: "lib", typ: tar.TypeSymlink, link: "/usr/lib"},
		ent{name: "lib/libc.so", body: "elf"},
	)
	_, err = archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
	requireEntryErr(t, err, archive.ErrUnsafePath, "lib/libc.so")
	s.checkOutside(t)
}

// TestExtractRace swaps a directory of the destination for a link to the
// sibling while an archive writes into it: no write may land outside.
func TestExtractRace(t *testing.T) {
	s := newSandbox(t)
	var ents []ent
	for i := range 200 {
		ents = append(ents, ent{name: "a/f" + itoa(i), body: "pwned"})
	}
	data := tarball(t, ents...)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a := filepath.Join(s.dest, "a")
		tmp := filepath.Join(s.dest, "tmp-link")
		for ctx.Err() == nil {
			_ = os.Symlink(s.sibling, tmp)
			_ = os.RemoveAll(a) // a directory or a link
			_ = os.Rename(tmp, a)
			_ = os.Remove(a)
			_ = os.Mkdir(a, 0o755)
		}
	}()
	var files, failures int
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		st, err := archive.Extract(ctx, bytes.NewReader(data), s.dest, archive.Options{})
		files += st.Files
		if err != nil {
			// Refused or failed (ENOENT, ENOTDIR...); either way, nothing outside.
			failures++
			var ee *archive.EntryError
			assert.ErrorAs(t, err, &ee)
		}
	}
	t.Logf("%d files written, %d extractions stopped by the swaps", files, failures)
	cancel()
	<-done
	s.checkOutside(t)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestExtractLimits(t *testing.T) {
	const mib = 1 << 20
	t.Run("declared 100 GiB file", func(t *testing.T) {
		s := newSandbox(t)
		data := headerOnly(t, &tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 100 << 30, Mode: 0o644})
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Limits: archive.Limits{MaxBytes: 10 * mib}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "huge")
		assert.NotErrorIs(t, err, archive.ErrBadArchive)
		assert.Zero(t, st.Bytes)
		assert.Empty(t, dirNames(t, s.dest))
	})
	t.Run("default limit", func(t *testing.T) {
		s := newSandbox(t)
		data := headerOnly(t, &tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: archive.DefaultMaxBytes + 1, Mode: 0o644})
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "huge")
	})
	t.Run("sparse 100 GiB file", func(t *testing.T) {
		s := newSandbox(t)
		_, err := archive.Extract(t.Context(), bytes.NewReader(sparseArchive(t, 100<<30)), s.dest, archive.Options{Limits: archive.Limits{MaxBytes: 10 * mib}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "huge")
		assert.Empty(t, dirNames(t, s.dest))
	})
	t.Run("small sparse file within limits", func(t *testing.T) {
		s := newSandbox(t)
		_, err := archive.Extract(t.Context(), bytes.NewReader(sparseArchive(t, 4096)), s.dest, archive.Options{})
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(s.dest, "huge"))
		require.NoError(t, err)
		assert.Equal(t, make([]byte, 4096), b)
	})
	t.Run("gzip bomb one file", func(t *testing.T) {
		s := newSandbox(t)
		bomb := gzipBomb(t, 1, 1<<30)
		t.Logf("1 GiB of zeros in %d compressed bytes", len(bomb))
		start := time.Now()
		st, err := archive.ExtractAuto(t.Context(), bytes.NewReader(bomb), s.dest, archive.Options{Limits: archive.Limits{MaxBytes: 10 * mib}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "zero0")
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Zero(t, st.Bytes)
	})
	t.Run("gzip bomb many files", func(t *testing.T) {
		s := newSandbox(t)
		bomb := gzipBomb(t, 1024, 1<<20) // 1 GiB in 1 MiB files
		start := time.Now()
		st, err := archive.ExtractAuto(t.Context(), bytes.NewReader(bomb), s.dest, archive.Options{Limits: archive.Limits{MaxBytes: 10 * mib}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "zero10")
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, int64(10*mib), st.Bytes, "stops exactly at the limit")
		assert.Len(t, dirNames(t, s.dest), 10)
	})
	t.Run("per-file limit", func(t *testing.T) {
		s := newSandbox(t)
		data := tarball(t, ent{name: "small", body: "1234"}, ent{name: "big", body: strings.Repeat("x", 100)})
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Limits: archive.Limits{MaxFileBytes: 99}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "big")
		assert.Equal(t, 1, st.Files)
	})
	t.Run("entries", func(t *testing.T) {
		s := newSandbox(t)
		var ents []ent
		for i := range 11 {
			ents = append(ents, ent{name: "d" + itoa(i) + "/", typ: tar.TypeDir})
		}
		st, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ents...)), s.dest, archive.Options{Limits: archive.Limits{MaxEntries: 10}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "d10/")
		assert.Equal(t, 10, st.Dirs)
	})
	t.Run("skipped entries count", func(t *testing.T) {
		s := newSandbox(t)
		data := headerOnly(t, &tar.Header{Name: "vendor", Typeflag: 'Z', Size: 100 << 30})
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Limits: archive.Limits{MaxBytes: 10 * mib}})
		requireEntryErr(t, err, archive.ErrLimitExceeded, "vendor")
	})
	t.Run("no limit", func(t *testing.T) {
		s := newSandbox(t)
		data := tarball(t, ent{name: "a", body: "xyz"})
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Limits: archive.Limits{MaxBytes: -1, MaxEntries: -1}})
		require.NoError(t, err)
	})
}

// gzipBomb returns a gzip stream of a tar of n files of size zero bytes
// each (size a multiple of 1 MiB). It is a concatenation of gzip members
// (which decompress to the concatenation of their content), so that it is
// built by compressing 1 MiB of zeros once instead of size*n bytes.
func gzipBomb(t testing.TB, n int, size int64) []byte {
	t.Helper()
	require.Zero(t, size%(1<<20))
	zeros := gzipped(t, make([]byte, 1<<20))
	var b []byte
	for i := range n {
		b = append(b, gzipped(t, headerOnly(t, &tar.Header{Name: "zero" + itoa(i), Typeflag: tar.TypeReg, Size: size, Mode: 0o644}))...)
		for range size >> 20 {
			b = append(b, zeros...)
		}
	}
	return append(b, gzipped(t, make([]byte, 1024))...)
}

// sparseArchive returns a PAX (GNU 1.0 sparse format) archive holding one
// file "huge" of logical size size that is all hole.
func sparseArchive(t testing.TB, size int64) []byte {
	t.Helper()
	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "huge") + paxRecord("GNU.sparse.realsize", itoa64(size))
	// The sparse map, the file's only data: one region at offset size, of 0 bytes.
	sparseMap := "1\n" + itoa64(size) + "\n0\n"
	var b []byte
	b = append(b, rawHeader("PaxHeaders/huge", 'x', int64(len(records)))...)
	b = append(b, padBlock(records)...)
	b = append(b, rawHeader("GNUSparseFile.0/huge", '0', 512)...)
	b = append(b, padBlock(sparseMap)...)
	return append(b, make([]byte, 1024)...)
}

// paxRecord formats one PAX extended header record.
func paxRecord(k, v string) string {
	rest := " " + k + "=" + v + "\n"
	n := len(rest) + 1
	for len(itoa(n))+len(rest) != n {
		n++
	}
	return itoa(n) + rest
}

// rawHeader builds a USTAR header block by hand, for headers that
// tar.Writer refuses to write.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 1_700_000_000))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padBlock pads s with NULs to a multiple of 512 bytes.
func padBlock(s string) []byte {
	b := []byte(s)
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

func itoa64(i int64) string {
	if i < 10 {
		return itoa(int(i))
	}
	return itoa64(i/10) + itoa(int(i%10))
}

func TestExtractSetuid(t *testing.T) {
	data := tarball(t,
		ent{name: "suid", body: "x", mode: 0o4755},
		ent{name: "sgid", body: "x", mode: 0o2755},
		ent{name: "sticky/", typ: tar.TypeDir, mode: 0o1777},
	)
	t.Run("stripped by default", func(t *testing.T) {
		s := newSandbox(t)
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
		require.NoError(t, err)
		assertMode(t, filepath.Join(s.dest, "suid"), 0o755)
		assertMode(t, filepath.Join(s.dest, "sgid"), 0o755)
		assertMode(t, filepath.Join(s.dest, "sticky"), fs.ModeDir|fs.ModeSticky|0o777)
	})
	t.Run("kept on request", func(t *testing.T) {
		s := newSandbox(t)
		_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{KeepSetuid: true})
		require.NoError(t, err)
		assertMode(t, filepath.Join(s.dest, "suid"), fs.ModeSetuid|0o755)
		assertMode(t, filepath.Join(s.dest, "sgid"), fs.ModeSetgid|0o755)
	})
}

func assertMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	assert.Equal(t, want, fi.Mode(), p)
}

func TestExtractDevices(t *testing.T) {
	data := tarball(t,
		ent{name: "null", typ: tar.TypeChar, mode: 0o666},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		ent{name: "file", body: "x"},
	)
	t.Run("skipped by default", func(t *testing.T) {
		s := newSandbox(t)
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
		require.NoError(t, err)
		assert.Equal(t, 2, st.Skipped)
		assert.Equal(t, []string{"file"}, dirNames(t, s.dest))
	})
	t.Run("fifo allowed", func(t *testing.T) {
		s := newSandbox(t)
		st, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ent{name: "fifo", typ: tar.TypeFifo, mode: 0o640})), s.dest, archive.Options{AllowDevices: true})
		require.NoError(t, err)
		assert.Equal(t, 1, st.Devices)
		assertMode(t, filepath.Join(s.dest, "fifo"), fs.ModeNamedPipe|0o640)
	})
	t.Run("char device allowed", func(t *testing.T) {
		testutil.RequireRoot(t)
		s := newSandbox(t)
		data := tarball(t, ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666})
		// Devmajor/minor of /dev/null are 1, 3.
		data = withDevice(t, data, 1, 3)
		st, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{AllowDevices: true})
		require.NoError(t, err)
		assert.Equal(t, 1, st.Devices)
		assertMode(t, filepath.Join(s.dest, "dev/null"), fs.ModeDevice|fs.ModeCharDevice|0o666)
	})
}

// withDevice rewrites the device numbers of every device entry of data.
func withDevice(t *testing.T, data []byte, major, minor int64) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = major, minor
		}
		require.NoError(t, tw.WriteHeader(hdr))
		_, err = io.Copy(tw, tr)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return out.Bytes()
}

func TestExtractMalformed(t *testing.T) {
	good := tarball(t, ent{name: "a", body: randomText(4000)}, ent{name: "b", body: "x"})
	gz := gzipped(t, good)
	corruptGzip := gzipped(t, good)
	corruptGzip[len(corruptGzip)-6] ^= 0xff // CRC32 in the trailer
	cases := []struct {
		name  string
		data  []byte
		entry string // "" when no entry is to blame
	}{
		{name: "garbage", data: bytes.Repeat([]byte("garbage!"), 200)},
		{name: "short garbage", data: []byte("nope")},
		{name: "truncated in data", data: good[:1000], entry: "a"},
		{name: "truncated in header", data: good[:512+4096+100]},
		{name: "bad checksum", data: func() []byte { b := bytes.Clone(good); b[148] ^= 1; return b }()},
		{name: "truncated gzip", data: gz[:len(gz)/2], entry: "a"},
		{name: "gzip bad crc", data: corruptGzip},
		{name: "gzip garbage", data: append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{7}, 100)...)},
		{name: "zstd garbage", data: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{7}, 100)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := archive.ExtractAuto(t.Context(), bytes.NewReader(tc.data), s.dest, archive.Options{})
			require.ErrorIs(t, err, archive.ErrBadArchive)
			var ee *archive.EntryError
			if tc.entry != "" {
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, tc.entry, ee.Name)
			}
			s.checkOutside(t)
		})
	}
	t.Run("empty stream is an empty archive", func(t *testing.T) {
		s := newSandbox(t)
		st, err := archive.ExtractAuto(t.Context(), bytes.NewReader(nil), s.dest, archive.Options{})
		require.NoError(t, err)
		assert.Equal(t, archive.Stats{}, st)
	})
}

// randomText returns n bytes of incompressible printable text.
func randomText(n int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}

type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestExtractSourceErrorIsNotBadArchive(t *testing.T) {
	errNet := errors.New("connection reset")
	good := tarball(t, ent{name: "a", body: randomText(4000)})
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", good}, {"gzip", gzipped(t, good)}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := archive.ExtractAuto(t.Context(), &failingReader{r: bytes.NewReader(tc.data), n: 700, err: errNet}, s.dest, archive.Options{})
			require.ErrorIs(t, err, errNet)
			assert.NotErrorIs(t, err, archive.ErrBadArchive)
		})
	}
}

func TestExtractCancelled(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := archive.Extract(ctx, bytes.NewReader(tarball(t, ent{name: "a", body: "x"})), s.dest, archive.Options{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, dirNames(t, s.dest))
}

func TestExtractExisting(t *testing.T) {
	s := newSandbox(t)
	d := s.dest
	require.NoError(t, os.WriteFile(filepath.Join(d, "file"), []byte("old"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(d, "dir/keep"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(d, "dir/keep/me"), []byte("kept"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(d, "wasdir/sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d, "wasfile"), []byte("x"), 0o600))
	// A hard link to a file outside: replacing it must not write through.
	require.NoError(t, os.Link(filepath.Join(s.sibling, "canary"), filepath.Join(d, "hard")))

	data := tarball(t,
		ent{name: "file", body: "new", mode: 0o640},
		ent{name: "dir/", typ: tar.TypeDir, mode: 0o750},
		ent{name: "dir/added", body: "added"},
		ent{name: "wasdir", body: "now a file"},
		ent{name: "wasfile/", typ: tar.TypeDir},
		ent{name: "hard", body: "pwned"},
	)
	_, err := archive.Extract(t.Context(), bytes.NewReader(data), d, archive.Options{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"file":        "-rw-r----- new",
		"dir":         "drwxr-x---",
		"dir/keep":    "drwx------",
		"dir/keep/me": "-rw------- kept",
		"dir/added":   "-rw-r--r-- added",
		"wasdir":      "-rw-r--r-- now a file",
		"wasfile":     "drwxr-xr-x",
		"hard":        "-rw-r--r-- pwned",
	}, tree(t, d))
	s.checkOutside(t)
}

func TestExtractReadOnlyDirectory(t *testing.T) {
	s := newSandbox(t)
	data := tarball(t,
		ent{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		ent{name: "ro/sub/", typ: tar.TypeDir, mode: 0o500},
		ent{name: "ro/sub/f", body: "x", mode: 0o400},
	)
	_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
	require.NoError(t, err)
	assertMode(t, filepath.Join(s.dest, "ro"), fs.ModeDir|0o555)
	assertMode(t, filepath.Join(s.dest, "ro/sub"), fs.ModeDir|0o500)
	assertMode(t, filepath.Join(s.dest, "ro/sub/f"), 0o400)
	// t.TempDir's cleanup must still be able to remove it.
	require.NoError(t, os.Chmod(filepath.Join(s.dest, "ro"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(s.dest, "ro/sub"), 0o755))
}

func TestExtractPreserveTimes(t *testing.T) {
	s := newSandbox(t)
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	data := tarball(t,
		ent{name: "d/", typ: tar.TypeDir, mt: mt},
		ent{name: "d/f", body: "x", mt: mt},
		ent{name: "d/l", typ: tar.TypeSymlink, link: "f", mt: mt.Add(time.Hour)},
	)
	_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{PreserveTimes: true})
	require.NoError(t, err)
	for p, want := range map[string]time.Time{"d": mt, "d/f": mt, "d/l": mt.Add(time.Hour)} {
		fi, err := os.Lstat(filepath.Join(s.dest, p))
		require.NoError(t, err)
		assert.True(t, want.Equal(fi.ModTime()), "%s: %v, want %v", p, fi.ModTime(), want)
	}
}

func TestExtractDestinationMissing(t *testing.T) {
	_, err := archive.Extract(t.Context(), bytes.NewReader(nil), filepath.Join(t.TempDir(), "missing"), archive.Options{})
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestExtractAutoFormats(t *testing.T) {
	plain := tarball(t, ent{name: "d/", typ: tar.TypeDir}, ent{name: "d/f", body: "hello"})
	for _, tc := range []struct {
		name string
		data []byte
		want archive.Compression
	}{
		{"plain", plain, archive.Uncompressed},
		{"gzip", gzipped(t, plain), archive.Gzip},
		{"zstd", zstded(t, plain), archive.Zstd},
		{"gzip multistream", append(gzipped(t, plain[:1024]), gzipped(t, plain[1024:])...), archive.Gzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, archive.Detect(tc.data))
			s := newSandbox(t)
			st, err := archive.ExtractAuto(t.Context(), bytes.NewReader(tc.data), s.dest, archive.Options{})
			require.NoError(t, err)
			assert.Equal(t, archive.Stats{Files: 1, Dirs: 1, Bytes: 5}, st)
			assert.Equal(t, map[string]string{"d": "drwxr-xr-x", "d/f": "-rw-r--r-- hello"}, tree(t, s.dest))
		})
	}
	assert.Equal(t, "zstd", archive.Zstd.String())
	assert.Equal(t, "Compression(9)", archive.Compression(9).String())
}

func TestEntryErrorMessage(t *testing.T) {
	s := newSandbox(t)
	_, err := archive.Extract(t.Context(), bytes.NewReader(tarball(t, ent{name: "../evil", body: "x"})), s.dest, archive.Options{})
	require.Error(t, err)
	assert.Equal(t, `archive: entry "../evil": unsafe path: name escapes the destination`, err.Error())
}
