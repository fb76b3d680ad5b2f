package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// Create writes src as an uncompressed tar stream to w and finishes it
// with the end-of-archive marker (w itself is not closed).
//
// When src is a directory, its content is archived recursively in
// lexical order, with names relative to src (see CreateOptions for
// IncludeRoot, for archiving a subset and for rewriting headers). When src is anything else, a
// single entry named after its base name is written.
//
// Nothing is followed: symbolic links are stored as links with their
// target as it is, src itself included (a src that is a symbolic link,
// even to a directory, is archived as that one link). Every file is
// opened through an [os.Root] on src, so a link swapped in during the walk
// cannot make Create read outside src; a file that changes identity
// between its stat and its open fails with an *EntryError. Regular files
// with several links in the archived set are stored once, the other names
// as hard links to the first. Sockets are left out. Owner ids, device
// numbers and hard-link detection are recorded on Linux only; user and
// group names are not recorded.
//
// Errors are *EntryError values naming the file (relative to src), or
// wrap the error of w. ctx is checked between files and between reads.
func Create(ctx context.Context, w io.Writer, src string, opts CreateOptions) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("archive: create: %w", err)
	}
	c := &creator{ctx: ctx, tw: tar.NewWriter(w), links: make(map[fileKey]string), hook: opts.Header}

	if !fi.IsDir() {
		if len(opts.Paths) > 0 {
			return fmt.Errorf("archive: create: %q is not a directory, Paths do not apply", src)
		}
		root, err := os.OpenRoot(filepath.Dir(src))
		if err != nil {
			return fmt.Errorf("archive: create: %w", err)
		}
		defer root.Close()
		base := filepath.Base(src)
		if fi, err = root.Lstat(base); err != nil {
			return &EntryError{Name: base, Err: err}
		}
		if err := c.add(root, base, base, fi); err != nil {
			return err
		}
		return c.close()
	}

	root, err := os.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("archive: create: %w", err)
	}
	defer root.Close()
	escapeErr := escapeError(root)

	prefix := ""
	if opts.IncludeRoot {
		if abs, err := filepath.Abs(src); err == nil && filepath.Base(abs) != string(filepath.Separator) {
			prefix = filepath.Base(abs)
		}
		if prefix != "" {
			rfi, err := root.Lstat(".")
			if err != nil {
				return &EntryError{Name: ".", Err: err}
			}
			if err := c.add(root, ".", prefix, rfi); err != nil {
				return err
			}
		}
	}

	paths := opts.Paths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, p := range paths {
		if err := c.path(root, p, prefix, escapeErr); err != nil {
			return err
		}
	}
	return c.close()
}

// creator holds the state of one Create call.
type creator struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[fileKey]string // first entry name of each multiply-linked inode
	hook  func(*tar.Header) error
	buf   []byte
}

func (c *creator) close() error {
	if err := c.tw.Close(); err != nil {
		return fmt.Errorf("archive: create: %w", err)
	}
	return nil
}

// path archives p (relative to root) and, if it is a directory,
// everything below it.
func (c *creator) path(root *os.Root, p, prefix string, escapeErr error) error {
	if path.IsAbs(p) || escapes(p) {
		return entryErr(p, ErrUnsafePath, "path is outside the source directory", nil)
	}
	rel := path.Clean(p)
	fail := func(err error) error {
		if escapeErr != nil && errors.Is(err, escapeErr) {
			return entryErr(p, ErrUnsafePath, "resolves outside the source directory through a symbolic link", err)
		}
		return &EntryError{Name: p, Err: err}
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return fail(err)
	}
	if rel != "." {
		if err := c.add(root, rel, path.Join(prefix, rel), fi); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return nil
	}
	d, err := root.OpenRoot(rel)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	return c.walk(d, rel, prefix)
}

// walk archives the content of directory d, which is rel below the source.
func (c *creator) walk(d *os.Root, rel, prefix string) error {
	f, err := d.Open(".")
	if err != nil {
		return &EntryError{Name: rel, Err: err}
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return &EntryError{Name: rel, Err: err}
	}
	slices.Sort(names)
	for _, base := range names {
		childRel := path.Join(rel, base)
		fi, err := d.Lstat(base)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since it was listed
		}
		if err != nil {
			return &EntryError{Name: childRel, Err: err}
		}
		if err := c.add(d, base, path.Join(prefix, childRel), fi); err != nil {
			return err
		}
		if fi.IsDir() {
			sub, err := d.OpenRoot(base)
			if err != nil {
				return &EntryError{Name: childRel, Err: err}
			}
			err = c.walk(sub, childRel, prefix)
			sub.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// add writes the entry for base in d, named name, whose lstat is fi.
func (c *creator) add(d *os.Root, base, name string, fi fs.FileInfo) error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	st := statOf(fi)
	m := fi.Mode()
	hdr := &tar.Header{
		Name:    name,
		Mode:    tarMode(m),
		Uid:     st.uid,
		Gid:     st.gid,
		ModTime: fi.ModTime(),
	}
	if !m.IsDir() && st.haveOwnerAndID && st.nlink > 1 {
		if first, ok := c.links[st.key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			return c.header(name, hdr)
		}
		c.links[st.key] = name
	}
	switch {
	case m.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return c.header(name, hdr)
	case m.IsRegular():
		return c.file(d, base, name, fi, hdr)
	case m&fs.ModeSymlink != 0:
		target, err := d.Readlink(base)
		if err != nil {
			return &EntryError{Name: name, Err: err}
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
		return c.header(name, hdr)
	case m&fs.ModeNamedPipe != 0:
		hdr.Typeflag = tar.TypeFifo
		return c.header(name, hdr)
	case m&fs.ModeDevice != 0:
		hdr.Typeflag = tar.TypeBlock
		if m&fs.ModeCharDevice != 0 {
			hdr.Typeflag = tar.TypeChar
		}
		hdr.Devmajor, hdr.Devminor = st.major, st.minor
		return c.header(name, hdr)
	default:
		return nil // socket or other irregular file: not archivable
	}
}

func (c *creator) header(name string, hdr *tar.Header) error {
	if c.hook != nil {
		n, typ, size, link := hdr.Name, hdr.Typeflag, hdr.Size, hdr.Linkname
		if err := c.hook(hdr); err != nil {
			return &EntryError{Name: name, Err: err}
		}
		if hdr.Name != n || hdr.Typeflag != typ || hdr.Size != size || hdr.Linkname != link {
			return &EntryError{Name: name, Err: errors.New("archive: the Header hook changed the name, type, size or link target")}
		}
	}
	if err := c.tw.WriteHeader(hdr); err != nil {
		return &EntryError{Name: name, Err: err}
	}
	return nil
}

// file writes a regular file's header and content.
func (c *creator) file(d *os.Root, base, name string, fi fs.FileInfo, hdr *tar.Header) error {
	f, err := d.OpenFile(base, os.O_RDONLY, 0)
	if err != nil {
		return &EntryError{Name: name, Err: err}
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return &EntryError{Name: name, Err: err}
	}
	if !os.SameFile(fi, ofi) || !ofi.Mode().IsRegular() {
		return &EntryError{Name: name, Err: errors.New("archive: file replaced while archiving")}
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = ofi.Size()
	if err := c.header(name, hdr); err != nil {
		return err
	}
	if c.buf == nil {
		c.buf = make([]byte, copyBufferSize)
	}
	var n int64
	for n < hdr.Size {
		if err := c.ctx.Err(); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		chunk := c.buf[:min(int64(len(c.buf)), hdr.Size-n)]
		nr, rerr := f.Read(chunk)
		if nr > 0 {
			if _, err := c.tw.Write(chunk[:nr]); err != nil {
				return &EntryError{Name: name, Err: err}
			}
			n += int64(nr)
		}
		if rerr == io.EOF && n < hdr.Size {
			return &EntryError{Name: name, Err: fmt.Errorf("archive: file shrank while archiving: %w", io.ErrUnexpectedEOF)}
		}
		if rerr != nil && rerr != io.EOF {
			return &EntryError{Name: name, Err: rerr}
		}
	}
	return nil
}

// tarMode returns the tar mode bits (permissions, setuid, setgid,
// sticky) of m.
func tarMode(m fs.FileMode) int64 {
	bits := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
