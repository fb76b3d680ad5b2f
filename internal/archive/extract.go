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
	"slices"
	"strings"
	"time"
)

// copyBufferSize is the size of the buffer file data is copied through.
const copyBufferSize = 256 << 10

// maxCachedDirs bounds the directory handles kept open during Extract.
const maxCachedDirs = 64

// Extract reads an uncompressed tar stream from r and writes its entries
// below dir, which must exist. It returns what it did, also on error.
//
// Names are cleaned, leading slashes removed ("/etc/x" lands in
// dir/etc/x), and every file system operation goes through an [os.Root]
// opened on dir, so no entry is written outside it: a name that climbs out
// with "..", or that reaches through a symbolic link pointing outside dir
// (absolute, or with too many ".."), whether the link was in dir before or
// came earlier in the same archive, fails with an *EntryError wrapping
// ErrUnsafePath. Symbolic links with any target are created, but never
// followed out of dir. See the package documentation for the full rules.
//
// Extraction stops at the first error; what was written until then stays
// (directories whose mode would not let their owner write them, and all
// directories with PreserveTimes, keep the provisional mode 0700 until the
// end of a successful run, so the caller can remove a partial result with
// os.RemoveAll). Errors are an *EntryError wrapping ErrUnsafePath,
// ErrLimitExceeded, ErrBadArchive or an OS error; a corrupt stream
// without an entry to blame wraps ErrBadArchive directly; a read error of
// r is returned wrapped as it is; a cancelled ctx returns ctx.Err()
// wrapped. ctx is checked between entries and between reads, not during a
// blocked read of r.
//
// Extract does not close r and reads no further than the end-of-archive
// marker. It is safe to run several Extract calls at once on different
// directories; concurrent calls on the same directory race with each
// other but still cannot write outside it.
func Extract(ctx context.Context, r io.Reader, dir string, opts Options) (Stats, error) {
	src := &sourceReader{r: r}
	return extract(ctx, src, src, dir, opts, nil)
}

// extract runs an extraction of the tar stream tr read from src (src is
// the caller's reader, below any decompressor, and tells read errors of
// the caller apart from a corrupt stream). verify, when not nil, runs
// after the end-of-archive marker to check the decompressor's trailer.
func extract(ctx context.Context, stream io.Reader, src *sourceReader, dir string, opts Options, verify func() error) (Stats, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("archive: open destination: %w", err)
	}
	defer root.Close()

	x := &extractor{
		ctx:       ctx,
		root:      root,
		src:       src,
		opts:      opts,
		chown:     opts.Chown && os.Geteuid() == 0,
		escapeErr: escapeError(root),
		dirCache:  make(map[string]*os.Root),
		dirIndex:  make(map[string]int),
	}
	if opts.Workers > 1 {
		x.w = newWriters(x, opts.Workers)
	}
	defer func() {
		x.w.stop() // before the handles the writers use are closed
		x.flushDirs()
	}()
	x.maxBytes, x.maxFile, x.maxEntries = opts.effective()
	x.maxDepth = opts.depth()

	err = x.run(tar.NewReader(stream))
	if err == nil {
		err = x.sync()
	}
	if err == nil && verify != nil {
		if verr := verify(); verr != nil {
			err = x.streamErr("", verr)
		}
	}
	if err == nil {
		err = x.finishDirs()
	}
	x.w.stop()
	return x.statsNow(), err
}

// extractor holds the state of one Extract call.
type extractor struct {
	ctx       context.Context
	root      *os.Root
	src       *sourceReader
	opts      Options
	chown     bool
	escapeErr error

	maxBytes, maxFile int64
	maxEntries        int
	entries           int
	declared          int64 // bytes of entry data declared so far

	// dirCache maps a directory (cleaned name relative to root) to a
	// handle on it, so that an entry costs one openat, not one per path
	// component. It is flushed whenever a directory or symbolic link is
	// removed, since a cached name might then resolve elsewhere.
	dirCache map[string]*os.Root
	maxDepth int

	// dirs are the directory entries, whose mode and times are applied
	// after all entries were written (a read-only directory must stay
	// writable while its content is extracted, and writing into a
	// directory changes its modification time).
	dirs     []dirMeta
	dirIndex map[string]int

	buf   []byte
	stats Stats

	// w writes regular files in parallel (Options.Workers > 1); nil
	// otherwise.
	w *writers
}

type dirMeta struct {
	name  string
	mode  fs.FileMode
	atime time.Time
	mtime time.Time
}

func (x *extractor) run(tr *tar.Reader) error {
	prev := ""
	for {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			// GODEBUG=tarinsecurepath=0: the names are checked below.
			err = nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if prev == "" {
				return x.streamErr("", err)
			}
			return x.streamErr("", fmt.Errorf("header after entry %q: %w", prev, err))
		}
		prev = hdr.Name
		x.entries++
		if x.maxEntries >= 0 && x.entries > x.maxEntries {
			return entryErr(hdr.Name, ErrLimitExceeded, fmt.Sprintf("more than %d entries", x.maxEntries), nil)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// streamErr classifies an error met while reading the archive: the
// caller's cancellation, a read error of the caller's reader, or else a
// corrupt stream.
func (x *extractor) streamErr(name string, err error) error {
	if cerr := x.ctx.Err(); cerr != nil {
		return fmt.Errorf("archive: %w", cerr)
	}
	if x.src.err != nil {
		if name != "" {
			return &EntryError{Name: name, Err: fmt.Errorf("reading archive: %w", x.src.err)}
		}
		return fmt.Errorf("archive: reading archive: %w", x.src.err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if name != "" {
		return entryErr(name, ErrBadArchive, "", err)
	}
	return fmt.Errorf("%w: %w", ErrBadArchive, err)
}

// fsErr turns an error of an os.Root operation on entry name into an
// *EntryError, classifying an escape from the root as ErrUnsafePath.
func (x *extractor) fsErr(name string, err error) error {
	if x.escapeErr != nil && errors.Is(err, x.escapeErr) {
		return entryErr(name, ErrUnsafePath, "resolves outside the destination through a symbolic link", err)
	}
	var ee *EntryError
	if errors.As(err, &ee) {
		return err
	}
	return &EntryError{Name: name, Err: err}
}

// hasData reports whether entries of type flag carry a data section.
func hasData(flag byte) bool {
	switch flag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return false
	}
	return true
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // PAX global header: metadata only, nothing to extract
	}
	if hasData(hdr.Typeflag) {
		if err := x.reserve(hdr.Name, hdr.Size); err != nil {
			return err
		}
	}
	if x.opts.RefuseAbsolute && strings.HasPrefix(hdr.Name, "/") {
		return entryErr(hdr.Name, ErrUnsafePath, "absolute name", nil)
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return &EntryError{Name: hdr.Name, Err: err}
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return entryErr(hdr.Name, ErrUnsafePath, "would replace the destination directory", nil)
	}
	if d := strings.Count(name, "/") + 1; x.maxDepth >= 0 && d > x.maxDepth && name != "." {
		return entryErr(hdr.Name, ErrLimitExceeded, fmt.Sprintf("name of %d components exceeds the depth limit of %d", d, x.maxDepth), nil)
	}

	if x.w != nil {
		if err := x.w.error(); err != nil {
			return err
		}
		if x.touchesPending(name, hdr) {
			if err := x.sync(); err != nil {
				return err
			}
		}
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		if x.w != nil && hdr.Size <= maxBufferedFile && hdr.Typeflag != tar.TypeGNUSparse {
			err = x.dispatch(name, hdr, tr)
		} else {
			err = x.file(name, hdr, tr)
		}
	case tar.TypeDir:
		err = x.dir(name, hdr)
	case tar.TypeSymlink:
		err = x.symlink(name, hdr)
	case tar.TypeLink:
		err = x.hardlink(name, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if !x.opts.AllowDevices {
			if x.opts.RefuseSpecial {
				return entryErr(hdr.Name, ErrNotAllowed, typeName(hdr.Typeflag), nil)
			}
			x.stats.Skipped++
			return nil
		}
		err = x.device(name, hdr)
	default:
		// Unknown or vendor type: Next skips its data.
		if x.opts.RefuseSpecial {
			return entryErr(hdr.Name, ErrNotAllowed, typeName(hdr.Typeflag), nil)
		}
		x.stats.Skipped++
		return nil
	}
	if err != nil {
		var ee *EntryError
		if errors.As(err, &ee) {
			ee.Name = hdr.Name
			return ee
		}
		return x.fsErr(hdr.Name, err)
	}
	return nil
}

// typeName names an entry type in error messages.
func typeName(flag byte) string {
	switch flag {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("entry of type %q", flag)
}

// reserve accounts for size bytes of entry data, failing before anything
// is written if that breaks a limit.
func (x *extractor) reserve(name string, size int64) error {
	if x.maxFile >= 0 && size > x.maxFile {
		return entryErr(name, ErrLimitExceeded, fmt.Sprintf("entry of %d bytes exceeds the per-file limit of %d", size, x.maxFile), nil)
	}
	if x.maxBytes >= 0 && size > x.maxBytes-x.declared {
		return entryErr(name, ErrLimitExceeded, fmt.Sprintf("archive exceeds the limit of %d bytes", x.maxBytes), nil)
	}
	x.declared += size
	return nil
}

// cleanName turns an entry name into a clean slash-separated path relative
// to the destination, or "." for the destination itself. Leading slashes
// are removed, as GNU tar does; a name that climbs out with ".." is
// refused.
func cleanName(name string) (string, error) {
	rel := strings.TrimLeft(name, "/")
	if escapes(rel) {
		return "", fmt.Errorf("%w: name escapes the destination", ErrUnsafePath)
	}
	return path.Clean(rel), nil // "" becomes "."
}

// escapes reports whether the relative slash-separated path p climbs above
// its starting point, lexically.
func escapes(p string) bool {
	c := path.Clean(p)
	return c == ".." || strings.HasPrefix(c, "../")
}

// parent returns a handle on the directory that will hold name, creating
// missing directories (mode 0755 before umask), and name's last element.
// The handle stays valid until the next call of parent.
func (x *extractor) parent(name string) (*os.Root, string, error) {
	dir, base := path.Split(name)
	if dir == "" {
		return x.root, base, nil
	}
	d, err := x.openDir(dir[:len(dir)-1], true)
	return d, base, err
}

// openDir returns a handle on the directory dir (a clean relative name,
// not "."), creating it and its missing parents when create is set. It
// opens one component
// at a time from the deepest ancestor it holds a handle on, so an entry
// in a known directory costs no system call and a new directory one or
// two, and, with NoFollow, it checks each component it opens.
func (x *extractor) openDir(dir string, create bool) (*os.Root, error) {
	if d, ok := x.dirCache[dir]; ok {
		return d, nil
	}
	if len(x.dirCache) >= maxCachedDirs {
		// Writers in flight use the handles: wait for them first.
		if err := x.sync(); err != nil {
			return nil, err
		}
		x.flushDirs()
	}
	cur, start := x.root, 0
	for i := strings.LastIndexByte(dir, '/'); i > 0; i = strings.LastIndexByte(dir[:i], '/') {
		if d, ok := x.dirCache[dir[:i]]; ok {
			cur, start = d, i+1
			break
		}
	}
	tmp := false // cur is a handle of this call, not cached
	for start <= len(dir) {
		end := strings.IndexByte(dir[start:], '/')
		if end < 0 {
			end = len(dir)
		} else {
			end += start
		}
		next, err := x.openStep(cur, dir[:end], dir[start:end], create)
		if tmp {
			cur.Close()
		}
		if err != nil {
			return nil, err
		}
		// Intermediate directories are cached while there is room (the
		// next entries are likely below them); the last one always.
		if end == len(dir) || len(x.dirCache) < maxCachedDirs {
			x.dirCache[dir[:end]] = next
			tmp = false
		} else {
			tmp = true
		}
		cur, start = next, end+1
	}
	return cur, nil
}

// openStep opens the directory base in parent (whose name relative to the
// destination is name), creating it when missing and create is set.
func (x *extractor) openStep(parent *os.Root, name, base string, create bool) (*os.Root, error) {
	if x.opts.NoFollow {
		fi, err := parent.Lstat(base)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: goes through the symbolic link %q", ErrUnsafePath, name)
		}
	}
	d, err := parent.OpenRoot(base)
	if create && errors.Is(err, fs.ErrNotExist) {
		if err := parent.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		d, err = parent.OpenRoot(base)
	}
	return d, err
}

// noLinks fails with ErrUnsafePath when a component of dir (a clean
// relative name) is a symbolic link. It creates nothing: a missing
// component ends the check.
func (x *extractor) noLinks(dir string) error {
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		fi, err := x.root.Lstat(dir[:i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: goes through the symbolic link %q", ErrUnsafePath, dir[:i])
		}
	}
	return nil
}

// flushDirs closes the cached directory handles.
func (x *extractor) flushDirs() {
	for k, d := range x.dirCache {
		d.Close()
		delete(x.dirCache, k)
	}
}

// clear removes whatever is at base in d so that an entry can take its
// place: a directory with all its content, anything else by unlinking
// (a symbolic link is removed, never followed). The directory cache is
// flushed when a directory or link goes, so the caller must call parent
// again.
func (x *extractor) clear(d *os.Root, base string) error {
	// A writer in flight may be writing below what goes: wait for them.
	if err := x.sync(); err != nil {
		return err
	}
	fi, err := d.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = d.RemoveAll(base)
	} else {
		err = d.Remove(base)
	}
	if fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0 {
		x.flushDirs()
	}
	return err
}

// create runs mk on the parent of name; if mk fails because something
// already exists there, it clears it and runs mk once more.
func (x *extractor) create(name string, mk func(d *os.Root, base string) error) (*os.Root, string, error) {
	d, base, err := x.parent(name)
	if err != nil {
		return nil, "", err
	}
	err = mk(d, base)
	if !errors.Is(err, fs.ErrExist) {
		return d, base, err
	}
	if err := x.clear(d, base); err != nil {
		return nil, "", err
	}
	if d, base, err = x.parent(name); err != nil {
		return nil, "", err
	}
	return d, base, mk(d, base)
}

// ids returns the host uid and gid for hdr, mapped when maps are set.
func (x *extractor) ids(hdr *tar.Header) (int, int, error) {
	uid, gid := hdr.Uid, hdr.Gid
	var err error
	if x.opts.UIDMap != nil {
		if uid, err = x.opts.UIDMap(uid); err != nil {
			return 0, 0, fmt.Errorf("archive: map uid %d: %w", hdr.Uid, err)
		}
	}
	if x.opts.GIDMap != nil {
		if gid, err = x.opts.GIDMap(gid); err != nil {
			return 0, 0, fmt.Errorf("archive: map gid %d: %w", hdr.Gid, err)
		}
	}
	return uid, gid, nil
}

// mode returns the permission bits of hdr as an fs.FileMode, with setuid
// and setgid cleared for regular files unless KeepSetuid.
func (x *extractor) mode(hdr *tar.Header, regular bool) fs.FileMode {
	m := fs.FileMode(hdr.Mode).Perm()
	if hdr.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	if regular && !x.opts.KeepSetuid {
		m &^= fs.ModeSetuid | fs.ModeSetgid
	}
	return m
}

func times(hdr *tar.Header) (atime, mtime time.Time) {
	mtime = hdr.ModTime
	atime = hdr.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	return atime, mtime
}

func (x *extractor) file(name string, hdr *tar.Header, tr *tar.Reader) error {
	meta, err := x.fileMeta(hdr)
	if err != nil {
		return err
	}
	var f *os.File
	d, base, err := x.create(name, func(d *os.Root, base string) error {
		var err error
		f, err = openNew(d, base)
		return err
	})
	if err != nil {
		return err
	}
	n, err := x.copy(hdr.Name, f, tr)
	x.stats.Bytes += n
	if err == nil && n != hdr.Size {
		err = x.streamErr(hdr.Name, io.ErrUnexpectedEOF)
	}
	if err != nil {
		f.Close()
		return err
	}
	if err := finishFile(f, d, base, meta); err != nil {
		return err
	}
	x.stats.Files++
	return nil
}

// openNew creates the regular file base in d for writing; it fails with
// fs.ErrExist when something is there.
func openNew(d *os.Root, base string) (*os.File, error) {
	// openNonblock spares os.File's trying to register a regular file
	// with the poller (four fcntl calls per file on Linux).
	return d.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL|openNonblock, 0o600)
}

// fileMeta is what is applied to a regular file once written.
type fileMeta struct {
	mode         fs.FileMode
	chown        bool
	uid, gid     int
	times        bool
	atime, mtime time.Time
}

// fileMeta returns the owner, mode and times to give the file of hdr.
func (x *extractor) fileMeta(hdr *tar.Header) (fileMeta, error) {
	m := fileMeta{mode: x.mode(hdr, true), chown: x.chown, times: x.opts.PreserveTimes}
	if m.chown {
		var err error
		if m.uid, m.gid, err = x.ids(hdr); err != nil {
			return m, err
		}
	}
	if m.times {
		m.atime, m.mtime = times(hdr)
	}
	return m, nil
}

// finishFile applies meta to the file f, written, and closes it. f is
// base in d.
func finishFile(f *os.File, d *os.Root, base string, meta fileMeta) error {
	var err error
	if meta.chown {
		err = f.Chown(meta.uid, meta.gid) // before Chmod: chown clears setuid
	}
	if err == nil {
		err = f.Chmod(meta.mode)
	}
	timesSet := false
	if err == nil && meta.times {
		err = futimes(f, meta.atime, meta.mtime)
		timesSet = err == nil
		if errors.Is(err, errors.ErrUnsupported) {
			err = nil
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if meta.times && !timesSet {
		return d.Chtimes(base, meta.atime, meta.mtime)
	}
	return nil
}

// copy copies the current entry's data from tr to f, checking ctx between
// reads. Read errors are classified by streamErr.
func (x *extractor) copy(name string, f *os.File, tr *tar.Reader) (int64, error) {
	if x.buf == nil {
		x.buf = make([]byte, copyBufferSize)
	}
	var n int64
	for {
		if err := x.ctx.Err(); err != nil {
			return n, fmt.Errorf("archive: %w", err)
		}
		nr, rerr := tr.Read(x.buf)
		if nr > 0 {
			nw, werr := f.Write(x.buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, x.streamErr(name, rerr)
		}
	}
}

func (x *extractor) dir(name string, hdr *tar.Header) error {
	if name == "." {
		// The destination itself: its mode and owner are the caller's.
		x.stats.Skipped++
		return nil
	}
	d, base, err := x.parent(name)
	if err != nil {
		return err
	}
	err = d.Mkdir(base, 0o700)
	if errors.Is(err, fs.ErrExist) {
		var fi fs.FileInfo
		if fi, err = d.Lstat(base); err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			// Keep it, and make sure its content can be written.
			if fi.Mode().Perm()&0o700 != 0o700 {
				err = d.Chmod(base, fi.Mode().Perm()|0o700)
			}
		default:
			// A file or a symbolic link (never followed): replace it.
			if err = x.clear(d, base); err != nil {
				return err
			}
			if d, base, err = x.parent(name); err != nil {
				return err
			}
			err = d.Mkdir(base, 0o700)
		}
	}
	if err != nil {
		return err
	}
	if err := x.lchown(d, base, hdr); err != nil {
		return err
	}
	atime, mtime := times(hdr)
	meta := dirMeta{name: name, mode: x.mode(hdr, false), atime: atime, mtime: mtime}
	i, seen := x.dirIndex[name]
	switch {
	case seen:
		x.dirs[i] = meta
	case meta.mode&0o700 == 0o700 && !x.opts.PreserveTimes:
		// The mode leaves the directory writable and no time is to be
		// kept: apply it now, sparing finishDirs a lookup.
		if err := d.Chmod(base, meta.mode); err != nil {
			return err
		}
	default:
		x.dirIndex[name] = len(x.dirs)
		x.dirs = append(x.dirs, meta)
	}
	x.stats.Dirs++
	return nil
}

// finishDirs applies the modes (and times) of the directory entries left
// for the end, deepest first, skipping names that are no longer
// directories.
func (x *extractor) finishDirs() error {
	if err := x.sync(); err != nil {
		return err
	}
	slices.SortFunc(x.dirs, func(a, b dirMeta) int { return strings.Compare(b.name, a.name) })
	for _, m := range x.dirs {
		d, base := x.root, m.name
		if dir, b := path.Split(m.name); dir != "" {
			pd, err := x.openDir(dir[:len(dir)-1], false)
			if err != nil {
				continue // removed or replaced by a later entry
			}
			d, base = pd, b
		}
		fi, err := d.Lstat(base)
		if err != nil || !fi.IsDir() {
			continue // replaced or removed by a later entry
		}
		if err := d.Chmod(base, m.mode); err != nil {
			return x.fsErr(m.name, err)
		}
		if x.opts.PreserveTimes {
			if err := d.Chtimes(base, m.atime, m.mtime); err != nil {
				return x.fsErr(m.name, err)
			}
		}
	}
	x.flushDirs()
	return nil
}

func (x *extractor) symlink(name string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return entryErr(hdr.Name, ErrBadArchive, "symbolic link with an empty target", nil)
	}
	d, base, err := x.create(name, func(d *os.Root, base string) error {
		return d.Symlink(hdr.Linkname, base)
	})
	if err != nil {
		return err
	}
	if err := x.lchown(d, base, hdr); err != nil {
		return err
	}
	if x.opts.PreserveTimes {
		atime, mtime := times(hdr)
		if err := lutimesAt(d, base, atime, mtime); err != nil {
			return err
		}
	}
	x.stats.Symlinks++
	return nil
}

func (x *extractor) hardlink(name string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return entryErr(hdr.Name, ErrBadArchive, "hard link with an empty target", nil)
	}
	if path.IsAbs(hdr.Linkname) || escapes(hdr.Linkname) {
		return entryErr(hdr.Name, ErrUnsafePath, fmt.Sprintf("hard link target %q is outside the destination", hdr.Linkname), nil)
	}
	target := path.Clean(hdr.Linkname)
	if target == name {
		x.stats.Skipped++ // a link to itself: nothing to do
		return nil
	}
	if dir := path.Dir(target); x.opts.NoFollow && dir != "." {
		if err := x.noLinks(dir); errors.Is(err, ErrUnsafePath) {
			return entryErr(hdr.Name, ErrUnsafePath, fmt.Sprintf("hard link target %q goes through a symbolic link", hdr.Linkname), nil)
		} else if err != nil {
			return err
		}
	}
	fi, err := x.root.Lstat(target)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		dest, err := x.root.Readlink(target)
		if err != nil {
			return err
		}
		if path.IsAbs(dest) || escapes(path.Join(path.Dir(target), dest)) {
			return entryErr(hdr.Name, ErrUnsafePath, fmt.Sprintf("hard link target %q is a symbolic link to %q outside the destination", hdr.Linkname, dest), nil)
		}
	}
	if _, _, err := x.create(name, func(_ *os.Root, _ string) error {
		return x.root.Link(target, name)
	}); err != nil {
		return err
	}
	x.stats.Hardlinks++
	return nil
}

func (x *extractor) device(name string, hdr *tar.Header) error {
	perm := x.mode(hdr, true).Perm()
	d, base, err := x.create(name, func(d *os.Root, base string) error {
		return mknodAt(d, base, hdr, perm)
	})
	if err != nil {
		return err
	}
	if err := x.lchown(d, base, hdr); err != nil {
		return err
	}
	if err := d.Chmod(base, perm); err != nil { // mknod applied the umask
		return err
	}
	if x.opts.PreserveTimes {
		atime, mtime := times(hdr)
		if err := d.Chtimes(base, atime, mtime); err != nil {
			return err
		}
	}
	x.stats.Devices++
	return nil
}

// escapeError returns the error os.Root reports for a name that resolves
// outside it. The os package does not export it; asking the root about
// ".." yields it without touching the file system.
func escapeError(root *os.Root) error {
	_, err := root.Lstat("..")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return nil
}

// sourceReader remembers the first read error of the caller's reader, so
// that it is reported as such and not as a corrupt archive.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// lchown gives base in d the owner of hdr, mapped, when Chown applies.
func (x *extractor) lchown(d *os.Root, base string, hdr *tar.Header) error {
	if !x.chown {
		return nil
	}
	uid, gid, err := x.ids(hdr)
	if err != nil {
		return err
	}
	return d.Lchown(base, uid, gid)
}
