package archive

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Magic numbers ExtractAuto recognises.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxTrailer bounds how much ExtractAuto decompresses after the
// end-of-archive marker to reach and check the compressed stream's
// trailer (tar writers pad to 10 KiB records; anything longer is ignored).
const maxTrailer = 1 << 20

// zstdMaxWindow caps the window a zstd frame may ask for, which is memory
// allocated up front: 128 MiB is what "zstd --long" uses by default.
const zstdMaxWindow = 128 << 20

// Compression is the compression of a stream, as sniffed by ExtractAuto.
type Compression int

// Compressions ExtractAuto knows.
const (
	// Uncompressed is a plain tar stream.
	Uncompressed Compression = iota
	// Gzip is a gzip stream (magic 1f 8b), possibly of several members.
	Gzip
	// Zstd is a Zstandard stream (magic 28 b5 2f fd).
	Zstd
)

// String returns "none", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// Detect returns the compression that the first bytes of a stream
// announce. Fewer than four bytes are enough for gzip; anything not
// recognised is Uncompressed.
func Detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// ExtractAuto is Extract for a stream that may be compressed: it sniffs
// the first bytes of r (see Detect) and decompresses gzip or zstd before
// extracting; anything else is read as a plain tar stream. Indexed gzip,
// as GzipWriter writes it, is inflated on several cores; other gzip
// streams are inflated ahead in one goroutine. Limits apply
// to the uncompressed content, so a compression bomb fails with
// ErrLimitExceeded at its first oversized header, having written nothing
// of it. A corrupt compressed stream, including a bad checksum found
// after the last entry, fails with ErrBadArchive (after the entries have
// been written: callers extract into a fresh directory and remove it on
// error). Unlike Extract, ExtractAuto reads ahead of what it extracts, and
// past the end-of-archive marker to the end of a compressed stream (at
// most 1 MiB further).
func ExtractAuto(ctx context.Context, r io.Reader, dir string, opts Options) (Stats, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	head, _ := br.Peek(len(zstdMagic)) // short at the end of a tiny stream
	if src.err != nil {
		return Stats{}, fmt.Errorf("archive: reading archive: %w", src.err)
	}
	switch Detect(head) {
	case Gzip:
		if head, _ := br.Peek(gzipHeaderLen); IsIndexedGzip(head) {
			// Members of known length: inflated several at once.
			zr := newGzipBlockReader(br, 0)
			defer zr.Close()
			return extract(ctx, zr, src, dir, opts, func() error { return drain(zr) })
		}
		// pgzip inflates ahead in a goroutine (stopped by Close) while
		// files are written: 15-25% faster here than inflating in line.
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return Stats{}, badStream(src, "gzip", err)
		}
		defer zr.Close()
		return extract(ctx, zr, src, dir, opts, func() error { return drain(zr) })
	case Zstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(2), // decode the next block while the last is written
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow),
		)
		if err != nil {
			return Stats{}, badStream(src, "zstd", err)
		}
		defer zr.Close()
		return extract(ctx, zr, src, dir, opts, func() error { return drain(zr) })
	default:
		return extract(ctx, br, src, dir, opts, nil)
	}
}

// badStream reports a decompressor that failed to start.
func badStream(src *sourceReader, kind string, err error) error {
	if src.err != nil {
		return fmt.Errorf("archive: reading archive: %w", src.err)
	}
	return fmt.Errorf("%w: %s: %w", ErrBadArchive, kind, err)
}

// drain reads what follows the end-of-archive marker, up to maxTrailer
// bytes, so that the decompressor checks its trailer (checksum, length).
func drain(r io.Reader) error {
	_, err := io.CopyN(io.Discard, r, maxTrailer)
	if err == io.EOF {
		return nil
	}
	return err // nil when more than maxTrailer bytes follow: not checked
}
