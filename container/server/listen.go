package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// maxSocketPath is the longest path a unix socket may have (sun_path of
// struct sockaddr_un, less its terminating NUL).
const maxSocketPath = 107

// Listen creates a unix socket at path with permissions mode (see
// WithSocketMode) and group gid (-1: the process's) and returns its
// listener. The socket appears at path with its final mode and owner
// already set: it is made under a temporary name in the same directory
// and renamed into place, so no client can connect through a window of
// looser permissions.
//
// A socket file left at path by a server that is gone is replaced; when a
// server still answers there Listen returns an error wrapping
// ErrSocketInUse, and when path is something other than a socket, an
// error saying so. Closing the listener does not remove the file; Serve
// removes it when it returns (unless another server has replaced it).
func Listen(path string, mode fs.FileMode, gid int) (net.Listener, error) {
	if mode&^0o660 != 0 {
		return nil, fmt.Errorf("server: socket mode %#o grants more than 0660", mode)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("server: socket %q: %w", path, err)
	}
	if len(abs) > maxSocketPath {
		return nil, fmt.Errorf("server: socket path %q is longer than %d bytes", abs, maxSocketPath)
	}
	if err := clearStale(abs); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(abs), ".wsock-"+randomHex(4))
	direct := len(tmp) > maxSocketPath
	if direct {
		tmp = abs // too long for a temporary name: chmod right after bind
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", abs, err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("server: socket %s: %w", abs, err)
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if !direct {
		if err := os.Rename(tmp, abs); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fail(err)
	}
	return &socketListener{UnixListener: l, file: &socketFile{path: abs, fi: fi}}, nil
}

// clearStale removes a socket file at path that no server answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("server: socket %s: exists and is not a socket (%v)", path, fi.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("server: socket %s: %w", path, ErrSocketInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("server: remove stale socket %s: %w", path, err)
	}
	return nil
}

// socketListener is a listener made by Listen: it knows its socket file.
type socketListener struct {
	*net.UnixListener
	file *socketFile
}

// socketFile is a socket file a Server created. remove deletes it once,
// and only when it is still the same file (a server started after this
// one may have replaced it).
type socketFile struct {
	path string
	fi   fs.FileInfo
	once sync.Once
}

func (f *socketFile) remove() {
	f.once.Do(func() {
		if fi, err := os.Lstat(f.path); err == nil && os.SameFile(fi, f.fi) {
			os.Remove(f.path)
		}
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
