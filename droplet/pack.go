package droplet

import (
	"archive/tar"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/paaskit/paaskit/internal/archive"
)

// Format is the compression of a droplet.
type Format int

// Formats. Gzip is the wire format of the DEA protocol and Pack's
// default; Unpack reads all three, telling them apart by their magic
// numbers.
const (
	// Gzip is a gzip stream. Pack writes it as independent members of
	// 1 MiB of input, each recording its compressed length in a gzip
	// extra field, so that Unpack inflates several at once; any gzip
	// reader (gzip -d, tar -xz) reads it as ordinary gzip.
	Gzip Format = iota
	// Zstd is a Zstandard stream: smaller than gzip and about four times
	// faster to unpack, for droplets that stay on one system (caches).
	Zstd
	// Uncompressed is a plain tar stream. Unpack reads it; Pack does not
	// write it.
	Uncompressed
)

// String returns "gzip", "zstd" or "tar".
func (f Format) String() string {
	switch f {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Uncompressed:
		return "tar"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Digest identifies packed droplet bytes.
type Digest struct {
	// SHA1 is the lowercase hex SHA-1 of the droplet's bytes: its key in
	// the DEA protocol (droplet_sha1, the start message's sha1) and in a
	// Registry.
	SHA1 string
	// SHA256 is the lowercase hex SHA-256 of the same bytes.
	SHA256 string
	// Size is the number of bytes written.
	Size int64
}

// PackOption tunes Pack.
type PackOption func(*packOptions)

type packOptions struct {
	format      Format
	level       int
	modTime     time.Time
	concurrency int
}

// WithFormat makes Pack write format (Gzip, the default, or Zstd).
func WithFormat(format Format) PackOption {
	return func(o *packOptions) { o.format = format }
}

// WithLevel sets the compression level: for Gzip 1 (fastest) to 9
// (smallest), default 6 as gzip's; for Zstd the zstd command's levels 1
// to 22, mapped onto the four of github.com/klauspost/compress/zstd,
// default 3. 0 means the default.
func WithLevel(level int) PackOption {
	return func(o *packOptions) { o.level = level }
}

// WithModTime gives every entry the modification time t (truncated to
// the second), so that the droplet's bytes, and so its SHA-1, depend only
// on the content, names and modes of the tree. By default entries keep
// the times of the files.
func WithModTime(t time.Time) PackOption {
	return func(o *packOptions) { o.modTime = t }
}

// WithConcurrency sets how many blocks Pack compresses at once; the
// default, 0, is GOMAXPROCS. The bytes written do not depend on it for
// Gzip.
func WithConcurrency(n int) PackOption {
	return func(o *packOptions) { o.concurrency = n }
}

// Pack writes the directory srcDir as a droplet to w and returns the
// droplet's digests, computed as the bytes stream out. It does not close
// w.
//
// The tarball is deterministic: entries in lexical byte order, names
// relative to srcDir ("app/", "app/Procfile", "staging_info.yml"; the
// directory itself has no entry), owner 0:0 without names, no access or
// change times, modification times truncated to the second (or
// WithModTime's).
// It preserves permission bits including setuid, setgid and sticky (Unpack
// strips the first two unless asked), empty directories, symbolic links
// with their targets as they are (never followed, srcDir itself neither)
// and hard links within the tree. Names that are not ASCII are stored as
// UTF-8 in PAX records, which GNU tar reads; a name that is not valid
// UTF-8 fails with ErrInvalid. Device nodes and FIFOs fail with
// ErrNotAllowed, since Unpack would refuse them; sockets are left out.
//
// Files are read through an [os.Root] on srcDir, so a link swapped in
// while Pack runs cannot make it read outside. Errors about one file are
// *EntryError values; an error of w is returned wrapped. ctx is checked
// between files and between reads; after an error or cancellation, what
// was written to w is a truncated droplet, to be discarded.
func Pack(ctx context.Context, srcDir string, w io.Writer, opts ...PackOption) (Digest, error) {
	o := packOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	fi, err := os.Stat(srcDir)
	if err != nil {
		return Digest{}, fmt.Errorf("droplet: pack: %w", err)
	}
	if !fi.IsDir() {
		return Digest{}, fmt.Errorf("%w: pack: %s is not a directory", ErrInvalid, srcDir)
	}

	hw := newHashWriter(&ctxWriter{ctx: ctx, w: w})
	var zw io.WriteCloser
	switch o.format {
	case Gzip:
		level := o.level
		if level == 0 {
			level = 6
		}
		if level < 1 || level > 9 {
			return Digest{}, fmt.Errorf("%w: gzip level %d outside 1..9", ErrInvalid, level)
		}
		if zw, err = archive.NewGzipWriter(hw, level, o.concurrency); err != nil {
			return Digest{}, fmt.Errorf("droplet: pack: %w", err)
		}
	case Zstd:
		zopts := []zstd.EOption{zstd.WithEncoderCRC(true)}
		if o.level != 0 {
			if o.level < 1 || o.level > 22 {
				return Digest{}, fmt.Errorf("%w: zstd level %d outside 1..22", ErrInvalid, o.level)
			}
			zopts = append(zopts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(o.level)))
		}
		if o.concurrency > 0 {
			zopts = append(zopts, zstd.WithEncoderConcurrency(o.concurrency))
		}
		if zw, err = zstd.NewWriter(hw, zopts...); err != nil {
			return Digest{}, fmt.Errorf("droplet: pack: %w", err)
		}
	default:
		return Digest{}, fmt.Errorf("%w: pack: format %v", ErrInvalid, o.format)
	}

	modTime := o.modTime.Truncate(time.Second)
	err = archive.Create(ctx, zw, srcDir, archive.CreateOptions{Header: func(hdr *tar.Header) error {
		switch {
		case !utf8.ValidString(hdr.Name):
			return fmt.Errorf("%w: name is not valid UTF-8", ErrInvalid)
		case !utf8.ValidString(hdr.Linkname):
			return fmt.Errorf("%w: link target is not valid UTF-8", ErrInvalid)
		case hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo:
			return fmt.Errorf("%w: device nodes and FIFOs cannot be packed", ErrNotAllowed)
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.ModTime = hdr.ModTime.Truncate(time.Second) // as GNU tar; the writer would round
		if !o.modTime.IsZero() {
			hdr.ModTime = modTime
		}
		return nil
	}})
	cerr := zw.Close()
	if err != nil {
		return Digest{}, fromArchive("pack", err)
	}
	if cerr != nil {
		return Digest{}, fmt.Errorf("droplet: pack: %w", cerr)
	}
	return hw.digest(), nil
}

// hashWriter computes the SHA-1 and SHA-256 of what it passes on.
type hashWriter struct {
	w      io.Writer
	sha1   hash.Hash
	sha256 hash.Hash
	n      int64
}

func newHashWriter(w io.Writer) *hashWriter {
	return &hashWriter{w: w, sha1: sha1.New(), sha256: sha256.New()}
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.sha1.Write(p[:n])
	h.sha256.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashWriter) digest() Digest {
	return Digest{
		SHA1:   hex.EncodeToString(h.sha1.Sum(nil)),
		SHA256: hex.EncodeToString(h.sha256.Sum(nil)),
		Size:   h.n,
	}
}

// ctxWriter fails writes once ctx is done, so that compression
// goroutines stop feeding a writer nobody waits for.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
