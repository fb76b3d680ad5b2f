package droplet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/paaskit/paaskit/internal/archive"
)

// Default limits of Unpack, used when the corresponding Limits field is
// zero. A DEA gives an app 1 to 2 GiB of disk; the defaults leave room
// above that and stop archives built to exhaust the host.
const (
	// DefaultMaxBytes caps the file data of a droplet: 4 GiB.
	DefaultMaxBytes int64 = 4 << 30
	// DefaultMaxEntries caps the number of entries of a droplet.
	DefaultMaxEntries = 1_000_000
	// DefaultMaxDepth caps the number of components of an entry's name.
	DefaultMaxDepth = 128
)

// Limits bounds what Unpack may write. The zero value means the defaults;
// a negative field means no limit. Limits are checked against each
// entry's header before any byte of it is written, so a droplet over a
// limit, however well it compresses (a gzip bomb), fails at its first
// offending header with ErrLimitExceeded.
type Limits struct {
	// MaxBytes caps the total size of the files. 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxEntries caps the number of entries of any type. 0 means
	// DefaultMaxEntries.
	MaxEntries int
	// MaxFileBytes caps the size of any one file. 0 means MaxBytes.
	MaxFileBytes int64
	// MaxDepth caps the number of components of an entry's name
	// ("app/lib/x.js" has 3). 0 means DefaultMaxDepth.
	MaxDepth int
}

// archive returns the limits in package archive's terms.
func (l Limits) archive() archive.Limits {
	pick := func(v, def int64) int64 {
		if v == 0 {
			return def
		}
		return v
	}
	return archive.Limits{
		MaxBytes:     pick(l.MaxBytes, DefaultMaxBytes),
		MaxEntries:   int(pick(int64(l.MaxEntries), DefaultMaxEntries)),
		MaxFileBytes: l.MaxFileBytes, // 0: the same as MaxBytes there too
		MaxDepth:     int(pick(int64(l.MaxDepth), DefaultMaxDepth)),
	}
}

// UnpackOption tunes Unpack.
type UnpackOption func(*unpackOptions)

type unpackOptions struct {
	keepSetuid bool
}

// KeepSetuid keeps the setuid and setgid bits of files, which Unpack
// clears by default.
func KeepSetuid() UnpackOption {
	return func(o *unpackOptions) { o.keepSetuid = true }
}

// UnpackStats says what Unpack wrote.
type UnpackStats struct {
	Format    Format // compression of the droplet read
	Files     int    // regular files
	Dirs      int    // directories (entries of the archive)
	Symlinks  int    // symbolic links
	Hardlinks int    // hard links
	Bytes     int64  // bytes of file data
}

// Unpack extracts the droplet read from r into dstDir and returns what it
// wrote. The droplet may be gzip (inflated on several cores when Pack
// wrote it), zstd or a plain tar stream, told apart by magic numbers.
//
// dstDir must not exist, or be an empty directory. When it does not
// exist, Unpack extracts into a new directory beside it (".NAME.unpack-*"
// in the same parent) and renames that to dstDir once everything is
// written, so dstDir appears complete or not at all; it gets mode 0755.
// When it is an empty directory (a mount point, say), Unpack extracts
// into it and, on failure, removes what it wrote. Either way no partial
// tree is left behind, also when ctx is cancelled. A dstDir that is not
// empty fails with ErrExist, touching nothing.
//
// The droplet is treated as hostile. Every file system operation goes
// through an [os.Root] on the extraction directory, so nothing can be
// written outside it, and Unpack refuses, with an *EntryError naming the
// entry, any entry that:
//   - is absolute or climbs out with ".." (ErrUnsafePath);
//   - goes through a symbolic link, even one pointing inside the tree, as
//     "app/lib" after a link "app" (ErrUnsafePath); links themselves are
//     created with any target, and are only never followed;
//   - is a hard link to a name outside the tree or through a link
//     (ErrUnsafePath);
//   - is a device node, FIFO or of a type tar extensions invented
//     (ErrNotAllowed);
//   - goes over limits: total bytes, single file, number of entries,
//     path depth (ErrLimitExceeded), checked before its data is written.
//
// Setuid and setgid bits are cleared unless KeepSetuid; permission bits,
// sticky bits and modification times are kept; owners are not applied
// (files belong to the caller). A corrupt stream fails with ErrBadArchive;
// a read error of r is returned wrapped as it is. Unpack does not close
// r; it reads r to the end of the compressed stream (at most 1 MiB past
// the tar stream's end), or of the tar stream when it is not compressed.
func Unpack(ctx context.Context, r io.Reader, dstDir string, limits Limits, opts ...UnpackOption) (st UnpackStats, retErr error) {
	o := unpackOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && len(head) == 0 {
		if err == io.EOF {
			return st, fmt.Errorf("%w: unpack: empty stream", ErrBadArchive)
		}
		return st, fmt.Errorf("droplet: unpack: reading droplet: %w", err)
	}
	switch archive.Detect(head) {
	case archive.Gzip:
		st.Format = Gzip
	case archive.Zstd:
		st.Format = Zstd
	default:
		st.Format = Uncompressed
	}

	dir, commit, abort, err := prepareDest(dstDir)
	if err != nil {
		return st, err
	}
	defer func() {
		if retErr != nil {
			if err := abort(); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("droplet: unpack: cleaning up: %w", err))
			}
		}
	}()

	as, err := archive.ExtractAuto(ctx, br, dir, archive.Options{
		Limits:         limits.archive(),
		KeepSetuid:     o.keepSetuid,
		PreserveTimes:  true,
		RefuseAbsolute: true,
		NoFollow:       true,
		RefuseSpecial:  true,
		Workers:        min(max(2, runtime.GOMAXPROCS(0)), 4),
	})
	st.Files, st.Dirs, st.Symlinks, st.Hardlinks, st.Bytes = as.Files, as.Dirs, as.Symlinks, as.Hardlinks, as.Bytes
	if err != nil {
		return st, fromArchive("unpack", err)
	}
	if err := commit(); err != nil {
		return st, fmt.Errorf("droplet: unpack: %w", err)
	}
	return st, nil
}

// prepareDest returns the directory to extract into for dstDir and the
// functions that make the result visible and that remove a partial one.
func prepareDest(dstDir string) (dir string, commit, abort func() error, err error) {
	fi, err := os.Lstat(dstDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent, base := filepath.Split(filepath.Clean(dstDir))
		if parent == "" {
			parent = "."
		}
		tmp, err := os.MkdirTemp(parent, "."+base+".unpack-")
		if err != nil {
			return "", nil, nil, fmt.Errorf("droplet: unpack: %w", err)
		}
		commit := func() error {
			if err := os.Chmod(tmp, 0o755); err != nil {
				return err
			}
			// rename(2) fails if dstDir appeared meanwhile and is not
			// an empty directory: nothing is overwritten.
			if err := os.Rename(tmp, dstDir); err != nil {
				_ = os.RemoveAll(tmp)
				return err
			}
			return nil
		}
		return tmp, commit, func() error { return os.RemoveAll(tmp) }, nil
	case err != nil:
		return "", nil, nil, fmt.Errorf("droplet: unpack: %w", err)
	case !fi.IsDir():
		return "", nil, nil, fmt.Errorf("%w: unpack: %s is not a directory", ErrExist, dstDir)
	}
	f, err := os.Open(dstDir)
	if err != nil {
		return "", nil, nil, fmt.Errorf("droplet: unpack: %w", err)
	}
	names, err := f.Readdirnames(1)
	f.Close()
	if err != nil && err != io.EOF {
		return "", nil, nil, fmt.Errorf("droplet: unpack: %w", err)
	}
	if len(names) > 0 {
		return "", nil, nil, fmt.Errorf("%w: unpack: %s is not empty", ErrExist, dstDir)
	}
	return dstDir, func() error { return nil }, func() error { return emptyDir(dstDir) }, nil
}

// emptyDir removes everything in dir, leaving dir itself.
func emptyDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
	}
	return errors.Join(errs...)
}
