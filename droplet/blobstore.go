package droplet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// BlobStore stores blobs (app packages, droplets, buildpack caches) by
// key, as Cloud Controller's blobstore does. A key is a slash-separated
// relative path, such as "droplets/<guid>" or "buildpack_cache/<app>";
// see ValidKey. Implementations in this package: *DirStore (a local
// directory) and *HTTPStore (a client of Handler). They are safe for
// concurrent use.
type BlobStore interface {
	// Put stores the content of r under key, replacing any blob there.
	// Readers of the key see the old blob or the new one, never a mix.
	// It does not close r. Errors: ErrInvalid for a bad key, or the
	// error of r, of the storage or of ctx.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the blob under key for reading; the caller closes it.
	// Errors: ErrNotFound, ErrInvalid.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Head returns the blob's size and time without reading it.
	// Errors: ErrNotFound, ErrInvalid.
	Head(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes the blob under key. It succeeds when there is none.
	// Errors: ErrInvalid, or the storage's.
	Delete(ctx context.Context, key string) error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Key     string    // the blob's key
	Size    int64     // bytes
	ModTime time.Time // when it was stored (as the store records it)
}

// ValidKey checks a blob key: 1 to 1024 bytes of valid UTF-8 without
// control characters or backslashes, made of "/"-separated components
// that are not empty and do not start with "." (so no "..", and names
// starting with "." are left to the stores). It returns nil or an error
// wrapping ErrInvalid.
func ValidKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w: blob key %q %s", ErrInvalid, key, why) }
	if key == "" || len(key) > 1024 {
		return bad("is empty or longer than 1024 bytes")
	}
	for _, c := range key {
		if c == unicode.ReplacementChar || c == '\\' || unicode.IsControl(c) {
			return bad("has a control character, a backslash or invalid UTF-8")
		}
	}
	for comp := range strings.SplitSeq(key, "/") {
		if comp == "" || comp[0] == '.' {
			return bad(`has an empty component or one starting with "."`)
		}
	}
	return nil
}

// DirStore is a BlobStore in a local directory: the blob under key
// "a/b" is the file a/b below it. Puts write into a ".tmp" directory
// inside it and rename into place, so a blob appears whole or not at
// all. Every operation goes through an [os.Root] on the directory, so no
// key, and no symbolic link placed in the directory, reaches outside it.
// A DirStore holds no open file and needs no Close; one directory should
// have one DirStore (one process) at a time.
type DirStore struct {
	dir string
}

// tmpName is the directory for Puts in progress.
const tmpName = ".tmp"

// NewDirStore returns a DirStore on dir, creating it (and its ".tmp") if
// needed, and removing temporary files more than an hour old that an
// interrupted process left.
func NewDirStore(dir string) (*DirStore, error) {
	tmp := filepath.Join(dir, tmpName)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("droplet: blob store: %w", err)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("droplet: blob store: %w", err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
	return &DirStore{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *DirStore) Dir() string { return s.dir }

// Put implements BlobStore. Missing parent directories of key are
// created; a key whose parent is a blob, or that names a directory of
// other keys, fails with an *fs.PathError.
func (s *DirStore) Put(ctx context.Context, key string, r io.Reader) (retErr error) {
	if err := ValidKey(key); err != nil {
		return err
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fmt.Errorf("droplet: put %s: %w", key, err)
	}
	defer root.Close()
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpName), "put-")
	if err != nil {
		return fmt.Errorf("droplet: put %s: %w", key, err)
	}
	tmp := path.Join(tmpName, filepath.Base(f.Name()))
	defer func() {
		if retErr != nil {
			_ = root.Remove(tmp)
		}
	}()
	_, err = io.CopyBuffer(f, &ctxReader{ctx: ctx, r: r}, make([]byte, 256<<10))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(tmp, 0o644)
	}
	if err == nil {
		if dir := path.Dir(key); dir != "." {
			err = root.MkdirAll(dir, 0o755)
		}
	}
	if err == nil {
		if fi, serr := root.Lstat(key); serr == nil && fi.IsDir() {
			err = &fs.PathError{Op: "put", Path: key, Err: errors.New("is a directory of other blobs")}
		}
	}
	if err == nil {
		err = root.Rename(tmp, key)
	}
	if err != nil {
		return fmt.Errorf("droplet: put %s: %w", key, err)
	}
	return nil
}

// Open opens the blob under key and returns it with its info; the caller
// closes the file. It is Get with a seekable result (for serving Range
// requests). Errors: ErrNotFound, ErrInvalid.
func (s *DirStore) Open(key string) (*os.File, BlobInfo, error) {
	if err := ValidKey(key); err != nil {
		return nil, BlobInfo{}, err
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, BlobInfo{}, fmt.Errorf("droplet: get %s: %w", key, err)
	}
	defer root.Close()
	f, err := root.Open(key)
	if notFound(err) {
		return nil, BlobInfo{}, fmt.Errorf("%w: blob %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, BlobInfo{}, fmt.Errorf("droplet: get %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, BlobInfo{}, fmt.Errorf("droplet: get %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, BlobInfo{}, fmt.Errorf("%w: blob %s", ErrNotFound, key)
	}
	return f, BlobInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Get implements BlobStore. The reader is an *os.File.
func (s *DirStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, _, err := s.Open(key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Head implements BlobStore.
func (s *DirStore) Head(ctx context.Context, key string) (BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return BlobInfo{}, err
	}
	f, info, err := s.Open(key)
	if err != nil {
		return BlobInfo{}, err
	}
	f.Close()
	return info, nil
}

// Delete implements BlobStore. Directories left empty are kept.
func (s *DirStore) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fmt.Errorf("droplet: delete %s: %w", key, err)
	}
	defer root.Close()
	fi, err := root.Lstat(key)
	if notFound(err) || err == nil && fi.IsDir() {
		return nil // no blob there
	}
	if err == nil {
		err = root.Remove(key)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("droplet: delete %s: %w", key, err)
	}
	return nil
}

// notFound reports whether err says that a key names nothing: it does
// not exist, or a component of it is a blob, not a directory.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
