package archive

import "archive/tar"

// Default limits, used when the corresponding Limits field is zero.
const (
	// DefaultMaxBytes is the default cap on the total size of the file
	// data in one archive: 8 GiB.
	DefaultMaxBytes int64 = 8 << 30
	// DefaultMaxEntries is the default cap on the number of entries in one
	// archive.
	DefaultMaxEntries = 1_000_000
	// DefaultMaxDepth is the default cap on the number of components of an
	// entry's name: far beyond any real tree (PATH_MAX allows at most 2048),
	// low enough to stop names built to exhaust the kernel's path lookup.
	DefaultMaxDepth = 1024
)

// Limits bounds what one Extract call may write. The zero value means the
// defaults; a negative value means no limit. Limits are checked against
// the sizes that entry headers declare before any byte of the entry is
// written, so an archive that exceeds them fails at the first offending
// header with ErrLimitExceeded, however well its data compresses.
type Limits struct {
	// MaxBytes caps the sum of the sizes of all entries that carry data
	// (regular files, and entries of unknown types, which are skipped
	// but must still be read through). 0 means DefaultMaxBytes; negative
	// means no limit.
	MaxBytes int64
	// MaxEntries caps the number of entries, of any type, including
	// skipped ones. 0 means DefaultMaxEntries; negative means no limit.
	MaxEntries int
	// MaxFileBytes caps the size of any one entry. 0 means the same as
	// MaxBytes; negative means no per-entry limit (MaxBytes still applies).
	MaxFileBytes int64
	// MaxDepth caps the number of components of an entry's cleaned name
	// ("app/lib/x.js" has 3), checked before anything is written for the
	// entry. 0 means DefaultMaxDepth; negative means no limit.
	MaxDepth int
}

// depth returns the depth limit with the default applied; -1 means none.
func (l Limits) depth() int {
	switch {
	case l.MaxDepth == 0:
		return DefaultMaxDepth
	case l.MaxDepth < 0:
		return -1
	}
	return l.MaxDepth
}

// effective returns the limits with defaults applied; -1 means none.
func (l Limits) effective() (maxBytes, maxFile int64, maxEntries int) {
	maxBytes, maxFile, maxEntries = l.MaxBytes, l.MaxFileBytes, l.MaxEntries
	switch {
	case maxBytes == 0:
		maxBytes = DefaultMaxBytes
	case maxBytes < 0:
		maxBytes = -1
	}
	switch {
	case maxFile == 0:
		maxFile = maxBytes
	case maxFile < 0:
		maxFile = -1
	}
	switch {
	case maxEntries == 0:
		maxEntries = DefaultMaxEntries
	case maxEntries < 0:
		maxEntries = -1
	}
	return maxBytes, maxFile, maxEntries
}

// Options tunes Extract and ExtractAuto. The zero value is the safe
// default: limits at their defaults, files owned by the caller, no device
// nodes, setuid and setgid bits stripped, times set to the extraction
// time. Options holds no state and may be reused.
type Options struct {
	Limits

	// Chown applies the uid and gid recorded in each header (mapped
	// through UIDMap and GIDMap) to the files, directories and symbolic
	// links created, without following links. It takes effect only when
	// the process runs as root (effective uid 0); otherwise it is
	// ignored, as GNU tar ignores ownership for unprivileged users, and
	// everything is owned by the caller.
	Chown bool
	// UIDMap and GIDMap, when not nil and Chown applies, translate the ids
	// of the archive into host ids (for example into a user namespace's
	// range). An error from them stops extraction; it is wrapped in an
	// *EntryError.
	UIDMap, GIDMap func(id int) (int, error)

	// AllowDevices creates character and block devices and FIFOs. When
	// false (the default) such entries are skipped and counted in
	// Stats.Skipped. Creating devices needs root (CAP_MKNOD); the error
	// of a refused mknod is returned.
	AllowDevices bool
	// KeepSetuid keeps the setuid and setgid bits of regular files. When
	// false (the default) they are cleared.
	KeepSetuid bool
	// PreserveTimes sets the modification (and access) times recorded in
	// the headers on files, directories and symbolic links. When false
	// they keep the time of extraction.
	PreserveTimes bool

	// The options below make extraction stricter than GNU tar, for
	// archives that must be exactly what they claim (droplets, app
	// packages) rather than tolerated (root file systems).

	// RefuseAbsolute fails an entry whose name starts with "/" with
	// ErrUnsafePath, where by default the slashes are removed.
	RefuseAbsolute bool
	// NoFollow fails with ErrUnsafePath an entry whose name, or whose hard
	// link target, goes through a symbolic link, even one that points
	// inside the destination (by default such links are followed, as GNU
	// tar does). Symbolic links themselves are still created, with any
	// target; they are just never traversed. The check is made against
	// the archive: a process that swaps a directory of the destination for
	// a link while Extract runs can still make an entry go through it, but,
	// as always, not outside the destination.
	NoFollow bool
	// Workers, when above 1, is how many goroutines write regular files
	// of up to 1 MiB, whose content is read ahead into memory (2 MiB at
	// most at a time), while the calling goroutine goes on reading the
	// archive; entries are still applied as if in archive order (an entry
	// that touches a name still being written waits for it). Larger
	// files, and every file when Workers is 0 or 1, are written in turn
	// by the calling goroutine. An error of a writer stops extraction at
	// the next entry.
	Workers int
	// RefuseSpecial fails with ErrNotAllowed the entries that are skipped
	// by default: device nodes and FIFOs (unless AllowDevices) and entries
	// of types Extract does not know. The destination's own entry ("." or
	// "/") and hard links to themselves are still skipped quietly.
	RefuseSpecial bool
}

// CreateOptions tunes Create. The zero value archives the whole source.
type CreateOptions struct {
	// Paths, when not empty, archives only these paths, relative to the
	// source directory, each with everything below it, in the order
	// given. A path that is absolute or climbs out with ".." is refused
	// with ErrUnsafePath; so is one that reaches outside the source
	// through a symbolic link.
	Paths []string
	// IncludeRoot prefixes every entry name with the base name of the
	// source directory and adds an entry for that directory itself, as
	// "tar -C parent base" does. When false, names are relative to the
	// source directory and the directory itself has no entry.
	IncludeRoot bool
	// Header, when not nil, is called with each entry's header before it
	// is written, in archive order. It may change the owner (Uid, Gid,
	// Uname, Gname), the times, the permission bits of Mode and
	// PAXRecords, for example to make the archive reproducible; it must
	// not change Name, Typeflag, Size or Linkname. An error it returns
	// stops Create, wrapped in an *EntryError naming the entry.
	Header func(hdr *tar.Header) error
}

// Stats counts what Extract did. It is returned also with an error, then
// counting what was done before the error.
type Stats struct {
	Files     int   // regular files written
	Dirs      int   // directory entries applied (created or updated)
	Symlinks  int   // symbolic links created
	Hardlinks int   // hard links created
	Devices   int   // device nodes and FIFOs created (AllowDevices)
	Skipped   int   // entries not extracted: devices when not allowed, unknown types, "/" or ".", hard links to themselves
	Bytes     int64 // bytes of file data written
}
