package archive_test

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// ent describes one entry of a test archive. The zero typ is a regular
// file; the zero mode is 0644 for files, 0755 for directories.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
	mt   time.Time
}

// tarball builds a tar stream from ents.
func tarball(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  e.mt,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = time.Unix(1_700_000_000, 0)
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			_, err := io.WriteString(tw, e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// headerOnly returns the header blocks of hdr as a tar.Writer writes them,
// without data or end marker: a stream that declares hdr.Size bytes and
// then ends.
func headerOnly(t testing.TB, hdr *tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(hdr))
	return buf.Bytes() // the writer is abandoned on purpose
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// sandbox is a destination directory with a sibling that holds a canary
// file: everything an attack might reach outside the destination.
type sandbox struct {
	base, dest, sibling string
}

const canary = "canary content"

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	s := sandbox{base: base, dest: filepath.Join(base, "dest"), sibling: filepath.Join(base, "sibling")}
	require.NoError(t, os.Mkdir(s.dest, 0o755))
	require.NoError(t, os.Mkdir(s.sibling, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.sibling, "canary"), []byte(canary), 0o644))
	// Archives may leave read-only directories, which a user other than
	// root cannot empty: make them writable before TempDir removes them
	// (cleanups run last registered first).
	t.Cleanup(func() {
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return s
}

// checkOutside fails t unless base still holds only dest and sibling and
// sibling still holds only the untouched canary.
func (s sandbox) checkOutside(t testing.TB) {
	t.Helper()
	require.Equal(t, []string{"dest", "sibling"}, dirNames(t, s.base), "entries appeared next to the destination")
	require.Equal(t, []string{"canary"}, dirNames(t, s.sibling), "entries appeared in the sibling directory")
	fi, err := os.Lstat(filepath.Join(s.sibling, "canary"))
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular(), "canary replaced")
	require.Equal(t, fs.FileMode(0o644), fi.Mode().Perm(), "canary mode changed")
	b, err := os.ReadFile(filepath.Join(s.sibling, "canary"))
	require.NoError(t, err)
	require.Equal(t, canary, string(b), "canary overwritten")
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// tree lists everything below dir as "path type" lines, for comparing
// two extractions.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + l
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	require.NoError(t, err)
	return out
}
