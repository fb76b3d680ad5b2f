package staging

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"unicode/utf8"
)

// ZipLimits bounds what Unzip may write. Zero fields mean the defaults.
type ZipLimits struct {
	// MaxBytes caps the uncompressed size of all files (default 4 GiB).
	MaxBytes int64
	// MaxEntries caps the number of entries (default 1,000,000).
	MaxEntries int
}

func (l ZipLimits) withDefaults() ZipLimits {
	if l.MaxBytes == 0 {
		l.MaxBytes = 4 << 30
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = 1_000_000
	}
	return l
}

// Unzip extracts the zip archive at zipPath into the existing directory
// dir, as hostile input: every write goes through an os.Root on dir, so
// entries that are absolute or climb out with ".." (zip-slip) and entries
// that would go through a symbolic link fail with ErrPackageInvalid, as do
// names that are not valid UTF-8, archives over the limits (checked against
// both the declared and the actual sizes) and corrupt archives. Modes
// (permission bits, without setuid, setgid and sticky) and symbolic links
// are kept; a link's target may be anything, since it is never followed
// during extraction. uid and gid, when not negative, own everything
// written.
func Unzip(ctx context.Context, zipPath, dir string, uid, gid int, limits ZipLimits) (retErr error) {
	limits = limits.withDefaults()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPackageInvalid, err)
	}
	defer zr.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if len(zr.File) > limits.MaxEntries {
		return fmt.Errorf("%w: %d entries, more than %d", ErrPackageInvalid, len(zr.File), limits.MaxEntries)
	}
	var total int64
	for _, f := range zr.File {
		if total+int64(f.UncompressedSize64) > limits.MaxBytes || f.UncompressedSize64 > uint64(limits.MaxBytes) {
			return fmt.Errorf("%w: over %d bytes uncompressed", ErrPackageInvalid, limits.MaxBytes)
		}
		total += int64(f.UncompressedSize64)
	}
	var dirs []*zip.File
	remaining := limits.MaxBytes
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, err := cleanZipName(f)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		n, err := extractZipEntry(root, f, name, uid, gid, remaining)
		if err != nil {
			return fmt.Errorf("%w: entry %q: %w", ErrPackageInvalid, f.Name, err)
		}
		remaining -= n
		if f.Mode().IsDir() {
			dirs = append(dirs, f)
		}
	}
	// Directory modes last, so a read-only directory still got its files.
	for _, f := range dirs {
		name, _ := cleanZipName(f)
		if err := root.Chmod(name, f.Mode().Perm()|0o700); err != nil {
			return fmt.Errorf("%w: entry %q: %w", ErrPackageInvalid, f.Name, err)
		}
	}
	return nil
}

// cleanZipName returns the entry's name relative to the destination, "" for
// the root itself, or an error for names that are not safe.
func cleanZipName(f *zip.File) (string, error) {
	n := f.Name
	if !utf8.ValidString(n) || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("%w: entry name %q is not UTF-8", ErrPackageInvalid, n)
	}
	n = strings.ReplaceAll(n, "\\", "/")
	if strings.HasPrefix(n, "/") || (len(n) > 1 && n[1] == ':') {
		return "", fmt.Errorf("%w: entry %q is absolute", ErrPackageInvalid, f.Name)
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: entry %q climbs out of the app", ErrPackageInvalid, f.Name)
		}
	}
	n = path.Clean(n)
	if n == "." {
		return "", nil
	}
	return n, nil
}

// extractZipEntry writes one entry below root and returns the bytes written.
func extractZipEntry(root *os.Root, f *zip.File, name string, uid, gid int, remaining int64) (int64, error) {
	if parent := path.Dir(name); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return 0, err
		}
		if uid >= 0 {
			// MkdirAll made them as root: hand the new parents over.
			for p := parent; p != "."; p = path.Dir(p) {
				_ = root.Lchown(p, uid, gid)
			}
		}
	}
	mode := f.Mode()
	var n int64
	switch {
	case mode.IsDir():
		if err := root.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return 0, err
		}
		if fi, err := root.Lstat(name); err != nil || !fi.IsDir() {
			return 0, fmt.Errorf("not a directory: %q", name)
		}
	case mode&fs.ModeSymlink != 0:
		rc, err := f.Open()
		if err != nil {
			return 0, err
		}
		target, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return 0, err
		}
		_ = root.Remove(name)
		if err := root.Symlink(string(target), name); err != nil {
			return 0, err
		}
	case mode.IsRegular():
		_ = root.Remove(name) // never write through an existing link
		w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
		if err != nil {
			return 0, err
		}
		rc, err := f.Open()
		if err != nil {
			w.Close()
			return 0, err
		}
		n, err = io.Copy(w, io.LimitReader(rc, remaining+1))
		rc.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
		if n > remaining {
			return n, errors.New("over the size limit")
		}
		if err := root.Chmod(name, mode.Perm()); err != nil {
			return n, err
		}
	default:
		return 0, fmt.Errorf("entry type %v not allowed", mode.Type())
	}
	if uid >= 0 {
		if err := root.Lchown(name, uid, gid); err != nil {
			return n, err
		}
	}
	return n, nil
}
