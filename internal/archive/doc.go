// Package archive extracts and creates tar streams safely: it is what the
// container package uses to import a stack's root file system and to
// stream files into and out of a container, and what the droplet package
// uses to unpack droplets.
//
// [Extract] reads a plain tar stream, [ExtractAuto] one that may be gzip
// or zstd compressed, and both write below a destination directory that
// the caller created. [Create] writes a directory (or one file) as a tar
// stream. [GzipWriter] compresses to indexed gzip: ordinary gzip made of
// independent 1 MiB members that record their length, which ExtractAuto
// inflates on several cores.
//
// # Threat model
//
// The archive is hostile: it was uploaded by a user, or produced inside a
// container whose processes may also be changing the destination while it
// is extracted. The destination directory itself, its path and the
// process running Extract are trusted. Extract guarantees:
//
//   - Nothing is created, written, removed or changed outside the
//     destination. Entry names are cleaned and leading slashes removed
//     ("/etc/x" lands in dir/etc/x, as with GNU tar; with
//     [Options].RefuseAbsolute such a name fails with ErrUnsafePath); a
//     name that climbs out with ".." fails with ErrUnsafePath.
//   - Symbolic links in the archive may have any target, absolute or
//     relative, since a root file system is full of them (/bin -> usr/bin,
//     /etc/mtab -> /proc/self/mounts). They are created as they are and
//     never followed out of the destination: a later entry whose path
//     goes through a link that points outside (absolute, or with too many
//     ".."), whether the link came earlier in the archive or was already
//     in the destination, fails with ErrUnsafePath. Links that stay inside
//     (a relative "lib -> usr/lib") are followed, as GNU tar does, unless
//     [Options].NoFollow: then no entry may go through any link.
//   - Every file system operation goes through an [os.Root] opened on the
//     destination, which resolves each path component with openat and
//     O_NOFOLLOW. The check and the write are therefore the same system
//     call: a concurrent process swapping a directory for a symbolic link
//     cannot redirect a write outside the destination. (A Root tracks the
//     directory itself, not its path; Extract holds handles on a few
//     subdirectories between entries, which is equally safe.)
//   - An entry never writes through what already exists at its name: a
//     regular file, link or device replaces an existing file or link by
//     unlinking it first (a hard link to a host file, or a symbolic link,
//     at that name is not written through), and an existing directory is
//     removed with its content. A directory entry over an existing
//     directory keeps it and its content, and applies the entry's mode.
//   - Hard links must name a target inside the destination: an absolute
//     or escaping target fails with ErrUnsafePath, as does one that is a
//     symbolic link pointing outside.
//   - Resource use is bounded by [Limits]: total bytes of file data,
//     bytes per file, number of entries and depth of names, checked
//     against each header before its data is written, so a 100 GiB sparse
//     file or a gzip bomb fails at once with ErrLimitExceeded. The tar
//     reader also bounds the size of extended headers, and the indexed
//     gzip reader the size of a member.
//   - Privilege is not granted by the archive: setuid and setgid bits are
//     cleared unless [Options].KeepSetuid, device nodes and FIFOs are
//     skipped unless [Options].AllowDevices (refused with ErrNotAllowed
//     under [Options].RefuseSpecial), ownership is applied only with
//     [Options].Chown and only as root.
//   - A truncated or corrupt stream fails with ErrBadArchive.
//
// Not covered: Extract does not stop an archive from filling the file
// system below the limits, does not make extraction atomic (on error,
// what was written stays; extract into a fresh directory and remove it on
// failure), does not guard against the destination crossing mount points
// or containing /proc-style magic links placed there by someone else, and
// does not apply extended attributes, ACLs or SELinux labels.
//
// Errors for one entry are *[EntryError] values naming the entry and
// wrapping one of the sentinels in errors.go or an OS error.
//
// # Platforms and privileges
//
// Linux is the platform this package is made for. It builds elsewhere, but
// there device nodes cannot be created (errors.ErrUnsupported), times of
// symbolic links are not set, and Create records no owners, device
// numbers or hard links. No function needs root, except what root alone
// may do: applying ownership (Chown) and creating device nodes.
//
// # Concurrency
//
// The functions hold no global state and may run concurrently, on
// different destinations. Options values are read-only and may be shared.
// ExtractAuto inflates indexed gzip in up to four goroutines, and with
// [Options].Workers writes small files in as many; all of them end before
// it returns. A GzipWriter's goroutines end at its Close.
package archive
