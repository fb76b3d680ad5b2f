package archive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/paaskit/paaskit/internal/archive"
)

// FuzzExtract feeds arbitrary streams to ExtractAuto and checks that it
// neither panics nor writes outside the destination, and that every error
// is one of the package's kinds. The seeds are the attacks of the tests.
func FuzzExtract(f *testing.F) {
	seeds := [][]ent{
		{{name: "../evil", body: "x"}},
		{{name: "a/../../evil", body: "x"}},
		{{name: "/etc/evil", body: "x"}},
		{{name: "link", typ: tar.TypeSymlink, link: "../sibling"}, {name: "link/evil", body: "x"}},
		{{name: "link", typ: tar.TypeSymlink, link: "/"}, {name: "link/tmp/evil", body: "x"}},
		{{name: "link", typ: tar.TypeSymlink, link: "../.."}, {name: "link/evil", body: "x"}},
		{{name: "l2", typ: tar.TypeSymlink, link: "../sibling"}, {name: "l1", typ: tar.TypeSymlink, link: "l2"}, {name: "l1/canary", body: "x"}},
		{{name: "h", typ: tar.TypeLink, link: "../sibling/canary"}, {name: "h", body: "x"}},
		{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}},
		{{name: "out", typ: tar.TypeSymlink, link: "../sibling/canary"}, {name: "h", typ: tar.TypeLink, link: "out"}, {name: "h", body: "x"}},
		{{name: "d/", typ: tar.TypeDir, mode: 0o555}, {name: "d/f", body: "x", mode: 0o4755}, {name: "d", body: "file now"}},
		{{name: "usr/lib/", typ: tar.TypeDir}, {name: "lib", typ: tar.TypeSymlink, link: "usr/lib"}, {name: "lib/x", body: "x"}},
		{{name: "null", typ: tar.TypeChar}, {name: "fifo", typ: tar.TypeFifo}},
	}
	for _, s := range seeds {
		data := tarball(f, s...)
		f.Add(data)
		f.Add(gzipped(f, data))
	}
	f.Add(sparseArchive(f, 100<<30))
	f.Add(headerOnly(f, &tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 100 << 30}))
	f.Add([]byte("garbage"))

	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		_, err := archive.ExtractAuto(t.Context(), bytes.NewReader(data), s.dest, archive.Options{
			Limits: archive.Limits{MaxBytes: 1 << 20, MaxEntries: 256},
		})
		if err != nil {
			var ee *archive.EntryError
			if !errors.As(err, &ee) && !errors.Is(err, archive.ErrBadArchive) {
				t.Fatalf("untyped error: %v", err)
			}
		}
		s.checkOutside(t)
		makeRemovable(t, s.dest)
	})
}

// makeRemovable gives the owner full access to every directory below dir,
// so that t.TempDir's cleanup can remove what an archive made read-only.
func makeRemovable(t *testing.T, dir string) {
	t.Helper()
	// WalkDir calls fn on a directory before reading it, so the chmod
	// comes first; errors only leave something for cleanup to report.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, _ error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
}
