package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/moby/sys/user"
	"github.com/paaskit/paaskit/internal/archive"
)

// fetchDroplet returns the local path of a droplet, sharing one Fetch of
// the source between concurrent callers asking for the same SHA-1. The
// shared fetch runs under the Manager's context, so one caller giving up
// does not fail the others.
func (m *Manager) fetchDroplet(ctx context.Context, sha1, uri string) (string, error) {
	ch := m.fetches.DoChan(sha1, func() (any, error) {
		m.dropletFetches.Add(1)
		return m.cfg.Droplets.Fetch(m.ctx, sha1, uri)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", fmt.Errorf("droplet %s: %w", sha1, r.Err)
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// extractDroplet unpacks the droplet tarball at path into home, on the
// host: the work is done by this process, outside the container's
// memory cgroup, so unpacking never pushes a small app over its limit
// (dea_ng ran tar inside the container, and small apps died of it). It
// makes sure app/, logs/ and tmp/ exist and gives everything to the app
// user.
func (m *Manager) extractDroplet(ctx context.Context, path, home string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := archive.Options{}
	if m.opts.uid >= 0 {
		uid, gid := m.opts.uid, m.opts.gid
		opts.Chown = true
		opts.UIDMap = func(int) (int, error) { return uid, nil }
		opts.GIDMap = func(int) (int, error) { return gid, nil }
	}
	if err := extract(ctx, f, home, opts); err != nil {
		return fmt.Errorf("extract droplet: %w", err)
	}
	for _, d := range []string{"app", "logs", "tmp"} {
		p := filepath.Join(home, d)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := mkdir(p); err != nil {
				return err
			}
		}
		m.chown(p)
	}
	m.chown(home)
	return nil
}

// chown gives p to the app user when there is one and we may.
func (m *Manager) chown(p string) {
	if m.opts.uid >= 0 && os.Geteuid() == 0 {
		os.Lchown(p, m.opts.uid, m.opts.gid)
	}
}

// lookupUser finds name in the stack's /etc/passwd when the stack is a
// directory; ok is false when it cannot.
func lookupUser(stack, name string) (uid, gid int, ok bool) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n, true
	}
	users, err := user.ParsePasswdFileFilter(filepath.Join(stack, "etc", "passwd"), func(u user.User) bool { return u.Name == name })
	if err != nil || len(users) == 0 {
		return -1, -1, false
	}
	return users[0].Uid, users[0].Gid, true
}

// smallDroplet is the size under which a gzip droplet is decompressed on
// one thread: archive.ExtractAuto's parallel gzip reader pays off for
// large droplets only, and its buffers cost more than small ones.
const smallDroplet = 8 << 20

// extract unpacks the droplet f (gzip, zstd or plain tar) into dir.
func extract(ctx context.Context, f *os.File, dir string, opts archive.Options) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var head [4]byte
	n, _ := f.ReadAt(head[:], 0)
	if fi.Size() >= smallDroplet || archive.Detect(head[:n]) != archive.Gzip {
		_, err := archive.ExtractAuto(ctx, f, dir, opts)
		return err
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: %v", archive.ErrBadArchive, err)
	}
	defer zr.Close()
	r := badArchiveReader{zr}
	if _, err := archive.Extract(ctx, r, dir, opts); err != nil {
		return err
	}
	// Read to the end so that a corrupt trailer (checksum) is reported.
	_, err = io.Copy(io.Discard, r)
	return err
}

// badArchiveReader reports the decompressor's errors as
// archive.ErrBadArchive, as archive.ExtractAuto does; errors reading the
// file stay as they are.
type badArchiveReader struct{ r io.Reader }

func (b badArchiveReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if _, ok := errors.AsType[*fs.PathError](err); !ok {
			err = fmt.Errorf("%w: %v", archive.ErrBadArchive, err)
		}
	}
	return n, err
}

// mkdir makes dir (and its parents) with mode 0755 whatever the umask:
// the umask is the process's, and code running alongside may change it
// for a moment (package container does, to create its sockets).
func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}
