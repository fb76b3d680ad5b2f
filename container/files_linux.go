package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"github.com/paaskit/paaskit/internal/archive"
)

// Files cross between host and container as tar streams, as garden's
// StreamIn and StreamOut did. The Manager works from the host on the
// container's root as its agent sees it (/proc/<agent>/root): every path
// is resolved inside that root (openat2 RESOLVE_IN_ROOT, or an emulation
// of it, by filepath-securejoin), so a symbolic link in the container
// cannot lead a stream to the host's files, and extraction writes through
// an os.Root anchored there.

// StreamIn extracts the tar stream r (plain, gzip or zstd) into dstPath in
// the container, creating dstPath as a directory if needed. Files are
// owned by user (a name from the container's /etc/passwd or "uid:gid";
// root when empty). Entries that would escape dstPath (absolute names,
// "..", links) are refused with an error wrapping archive.ErrUnsafePath;
// device nodes and FIFOs are refused too. On a refusal, what was extracted
// before the bad entry stays. Writing past the container's disk limit
// fails with the file system's error (ENOSPC or EDQUOT).
func (c *Container) StreamIn(ctx context.Context, dstPath, owner string, r io.Reader) error {
	if err := c.check(); err != nil {
		return err
	}
	if !path.IsAbs(dstPath) {
		return specErr("dstPath", "%q is not an absolute path", dstPath)
	}
	if err := validUser("user", owner); err != nil {
		return err
	}
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	uid, gid, err := lookupUserIn(root, owner)
	if err != nil {
		return err
	}
	dir, err := pathrs.MkdirAllHandle(root, dstPath, 0o755)
	if err != nil {
		return fmt.Errorf("container %q: stream in %s: %w", c.handle, dstPath, err)
	}
	defer dir.Close()
	opts := archive.Options{
		Chown:          true,
		UIDMap:         func(int) (int, error) { return uid, nil },
		GIDMap:         func(int) (int, error) { return gid, nil },
		RefuseAbsolute: true,
		RefuseSpecial:  true,
		NoFollow:       true,
		PreserveTimes:  true,
	}
	if _, err := archive.ExtractAuto(ctx, r, fdPath(dir), opts); err != nil {
		return fmt.Errorf("container %q: stream in %s: %w", c.handle, dstPath, err)
	}
	return nil
}

// StreamOut returns srcPath in the container as a tar stream: a directory
// with everything below it, under its base name, or a single file.
// Links are stored as links, never followed. The stream is produced while
// it is read; close it to stop early. A missing srcPath returns an error
// wrapping fs.ErrNotExist.
func (c *Container) StreamOut(ctx context.Context, srcPath string) (io.ReadCloser, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if !path.IsAbs(srcPath) {
		return nil, specErr("srcPath", "%q is not an absolute path", srcPath)
	}
	root, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// The parent is resolved inside the root; the last element is not
	// followed, so a link is streamed as a link.
	clean := path.Clean(srcPath)
	parent, err := pathrs.OpenatInRoot(root, path.Dir(clean))
	if err != nil {
		return nil, fmt.Errorf("container %q: stream out %s: %w", c.handle, srcPath, err)
	}
	base := path.Base(clean)
	if clean == "/" {
		base = "."
	}
	if _, err := os.Lstat(fdPath(parent) + "/" + base); err != nil {
		parent.Close()
		return nil, fmt.Errorf("container %q: stream out %s: %w", c.handle, srcPath, err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer parent.Close()
		src := fdPath(parent) + "/" + base
		var err error
		if fi, lerr := os.Lstat(src); lerr == nil && fi.IsDir() {
			err = archive.Create(ctx, pw, src, archive.CreateOptions{IncludeRoot: clean != "/"})
		} else {
			err = archive.Create(ctx, pw, src, archive.CreateOptions{})
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// openRoot opens the container's root directory, as its agent sees it.
func (c *Container) openRoot() (*os.File, error) {
	c.mu.Lock()
	pid, start := c.state.AgentPID, c.state.AgentStartTime
	c.mu.Unlock()
	root, err := os.Open("/proc/" + strconv.Itoa(pid) + "/root")
	if err != nil {
		return nil, fmt.Errorf("container %q: %w: %v", c.handle, ErrAgent, err)
	}
	// The pid still being the agent's (and not a recycled one) makes the
	// root the container's.
	if st, err := procStartTime(pid); err != nil || st != start {
		root.Close()
		return nil, fmt.Errorf("container %q: %w: agent is gone", c.handle, ErrAgent)
	}
	return root, nil
}

// lookupUserIn resolves a user name or "uid:gid" with the container's
// /etc/passwd and /etc/group, read through the root.
func lookupUserIn(root *os.File, spec string) (uid, gid int, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	open := func(p string) io.Reader {
		h, err := pathrs.OpenatInRoot(root, p)
		if err != nil {
			return nil
		}
		defer h.Close()
		f, err := pathrs.Reopen(h, os.O_RDONLY)
		if err != nil {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(f, 4<<20))
		f.Close()
		return bytes.NewReader(b)
	}
	passwd, group := open("/etc/passwd"), open("/etc/group")
	eu, err := user.GetExecUser(spec, nil, passwd, group)
	if err != nil {
		return 0, 0, errors.Join(specErr("user", "%q: %v", spec, err))
	}
	return eu.Uid, eu.Gid, nil
}

// fdPath names an open file by its descriptor, for APIs that take paths.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
