// Package stagingtest helps tests of code that stages apps: it writes
// buildpacks from shell snippets and zips app packages.
//
// It needs no privileges; staging with script buildpacks does (see package
// staging).
package stagingtest

import (
	"archive/zip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Buildpack writes a buildpack into a new temporary directory and returns
// it: each entry of scripts is bin/<name> with mode 0755, prefixed with
// "#!/bin/bash\n" unless it starts with "#!". Other files may be given
// with a path containing a slash ("lib/x"), mode 0644.
func Buildpack(t testing.TB, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range scripts {
		p := filepath.Join(dir, "bin", name)
		mode := fs.FileMode(0o755)
		if filepath.Base(name) != name {
			p, mode = filepath.Join(dir, name), 0o644
		} else if len(content) < 2 || content[:2] != "#!" {
			content = "#!/bin/bash\n" + content
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// AppZip writes a zip of files (name → content, mode 0644) into a
// temporary directory and returns its path.
func AppZip(t testing.TB, files map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, content := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// ZipDir writes the directory dir as a zip archive to w, with modes and
// symbolic links, names relative to dir.
func ZipDir(w io.Writer, dir string) error {
	zw := zip.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := zip.FileInfoHeader(fi)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
			_, err = zw.CreateHeader(h)
			return err
		}
		h.Method = zip.Deflate
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			_, err = io.WriteString(fw, target)
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(fw, f)
		return err
	})
	if err != nil {
		return err
	}
	return zw.Close()
}
