package droplettest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/paaskit/paaskit/droplet"
)

// Entry is one entry of a tarball built by [Tarball]. Fields that do not
// apply to the entry's type are ignored.
type Entry struct {
	// Name is written as it is: tests of hostile archives need names
	// such as "../x" or "/etc/x" that a tar writer would not produce.
	Name string
	// Type is the tar type flag; 0 means a regular file (tar.TypeReg).
	Type byte
	// Body is the content of a regular file.
	Body string
	// Zeros, when Body is empty, makes a regular file of that many zero
	// bytes, streamed (a compression bomb compresses them a thousandfold).
	Zeros int64
	// Link is the target of a symbolic or hard link.
	Link string
	// Mode holds the permission bits (and setuid, setgid, sticky); 0
	// means 0644 for files, 0755 for directories, 0777 for links.
	Mode int64
	// ModTime is the entry's time; the zero value means a fixed time.
	ModTime time.Time
	// Devmajor and Devminor are the device numbers of a device node.
	Devmajor, Devminor int64
}

// Tarball returns a droplet holding entries, in that order, compressed
// in format (gzip here is a plain single-member stream, as GNU tar
// writes). It fails t on error.
func Tarball(t testing.TB, format droplet.Format, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteEntries(&buf, format, entries...); err != nil {
		t.Fatalf("droplettest: %v", err)
	}
	return buf.Bytes()
}

// WriteEntries writes the droplet of [Tarball] to w.
func WriteEntries(w io.Writer, format droplet.Format, entries ...Entry) error {
	var zw io.WriteCloser
	switch format {
	case droplet.Gzip:
		zw = gzip.NewWriter(w)
	case droplet.Zstd:
		e, err := zstd.NewWriter(w)
		if err != nil {
			return err
		}
		zw = e
	case droplet.Uncompressed:
		zw = nopCloser{w}
	default:
		return fmt.Errorf("droplettest: unknown format %v", format)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:     e.Name,
			Typeflag: e.Type,
			Linkname: e.Link,
			Mode:     e.Mode,
			ModTime:  e.ModTime,
			Devmajor: e.Devmajor,
			Devminor: e.Devminor,
			Format:   tar.FormatPAX,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = fixedTime
		}
		if hdr.Mode == 0 {
			switch hdr.Typeflag {
			case tar.TypeDir:
				hdr.Mode = 0o755
			case tar.TypeSymlink, tar.TypeLink:
				hdr.Mode = 0o777
			default:
				hdr.Mode = 0o644
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
			if e.Body == "" {
				hdr.Size = e.Zeros
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("droplettest: entry %q: %w", e.Name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		var err error
		if e.Body != "" {
			_, err = io.WriteString(tw, e.Body)
		} else {
			_, err = io.CopyN(tw, zeroReader{}, e.Zeros)
		}
		if err != nil {
			return fmt.Errorf("droplettest: entry %q: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Hostile is an archive that Unpack must refuse.
type Hostile struct {
	// Name says what the archive tries.
	Name string
	// Data is the droplet, gzip compressed.
	Data []byte
	// Limits are the limits to unpack it with (the zero value for the
	// defaults).
	Limits droplet.Limits
	// Err is the sentinel the error must wrap.
	Err error
	// Entry is the name the *droplet.EntryError must carry.
	Entry string
}

// HostileTarballs returns the hostile archives every droplet unpacker
// must refuse: names that climb out (zip-slip) or are absolute, entries
// through symbolic links (to outside, to "..", and to inside), hard links
// out of the tree or through links, device nodes and FIFOs, an entry of
// an unknown type, and archives over each limit, including gzip bombs.
// Each says which error and which entry Unpack must report. Building them
// takes well under a second.
func HostileTarballs(t testing.TB) []Hostile {
	t.Helper()
	gz := func(entries ...Entry) []byte { return Tarball(t, droplet.Gzip, entries...) }
	deep := strings.Repeat("d/", droplet.DefaultMaxDepth) + "f"
	many := make([]Entry, 0, 11)
	for i := range 11 {
		many = append(many, Entry{Name: fmt.Sprintf("f%02d", i), Body: "x"})
	}
	bombs := make([]Entry, 0, 32)
	for i := range 32 {
		bombs = append(bombs, Entry{Name: fmt.Sprintf("app/zero%02d", i), Zeros: 1 << 20})
	}
	return []Hostile{
		{Name: "zip-slip", Data: gz(Entry{Name: "app/ok", Body: "ok"}, Entry{Name: "../evil", Body: "pwned"}),
			Err: droplet.ErrUnsafePath, Entry: "../evil"},
		{Name: "zip-slip nested", Data: gz(Entry{Name: "app/../../evil", Body: "pwned"}),
			Err: droplet.ErrUnsafePath, Entry: "app/../../evil"},
		{Name: "zip-slip dot", Data: gz(Entry{Name: "./app/./../../../evil", Body: "pwned"}),
			Err: droplet.ErrUnsafePath, Entry: "./app/./../../../evil"},
		{Name: "absolute path", Data: gz(Entry{Name: "/etc/evil", Body: "pwned"}),
			Err: droplet.ErrUnsafePath, Entry: "/etc/evil"},
		{Name: "absolute directory", Data: gz(Entry{Name: "/tmp/", Type: tar.TypeDir}),
			Err: droplet.ErrUnsafePath, Entry: "/tmp/"},
		{Name: "symlink then file", Data: gz(
			Entry{Name: "app/link", Type: tar.TypeSymlink, Link: "/etc"},
			Entry{Name: "app/link/evil", Body: "pwned"}),
			Err: droplet.ErrUnsafePath, Entry: "app/link/evil"},
		{Name: "symlink up then file", Data: gz(
			Entry{Name: "app/up", Type: tar.TypeSymlink, Link: "../.."},
			Entry{Name: "app/up/evil", Body: "pwned"}),
			Err: droplet.ErrUnsafePath, Entry: "app/up/evil"},
		{Name: "symlink inside then file", Data: gz(
			Entry{Name: "app/vendor/", Type: tar.TypeDir},
			Entry{Name: "app/lib", Type: tar.TypeSymlink, Link: "vendor"},
			Entry{Name: "app/lib/x", Body: "through a link"}),
			Err: droplet.ErrUnsafePath, Entry: "app/lib/x"},
		{Name: "symlink then directory below", Data: gz(
			Entry{Name: "app", Type: tar.TypeSymlink, Link: "/"},
			Entry{Name: "app/etc/", Type: tar.TypeDir}),
			Err: droplet.ErrUnsafePath, Entry: "app/etc/"},
		{Name: "hardlink escape", Data: gz(Entry{Name: "app/passwd", Type: tar.TypeLink, Link: "../../etc/passwd"}),
			Err: droplet.ErrUnsafePath, Entry: "app/passwd"},
		{Name: "hardlink absolute", Data: gz(Entry{Name: "app/passwd", Type: tar.TypeLink, Link: "/etc/passwd"}),
			Err: droplet.ErrUnsafePath, Entry: "app/passwd"},
		{Name: "hardlink through symlink", Data: gz(
			Entry{Name: "app/etc", Type: tar.TypeSymlink, Link: "/etc"},
			Entry{Name: "app/passwd", Type: tar.TypeLink, Link: "app/etc/passwd"}),
			Err: droplet.ErrUnsafePath, Entry: "app/passwd"},
		{Name: "character device", Data: gz(Entry{Name: "app/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}),
			Err: droplet.ErrNotAllowed, Entry: "app/null"},
		{Name: "block device", Data: gz(Entry{Name: "app/sda", Type: tar.TypeBlock, Mode: 0o660, Devmajor: 8}),
			Err: droplet.ErrNotAllowed, Entry: "app/sda"},
		{Name: "fifo", Data: gz(Entry{Name: "app/fifo", Type: tar.TypeFifo}),
			Err: droplet.ErrNotAllowed, Entry: "app/fifo"},
		{Name: "unknown type", Data: gz(Entry{Name: "app/odd", Type: 'Z'}),
			Err: droplet.ErrNotAllowed, Entry: "app/odd"},
		{Name: "gzip bomb", Data: gz(Entry{Name: "app/ok", Body: "ok"}, Entry{Name: "app/zeros", Zeros: 64 << 20}),
			Limits: droplet.Limits{MaxBytes: 16 << 20}, Err: droplet.ErrLimitExceeded, Entry: "app/zeros"},
		{Name: "gzip bomb of small files", Data: gz(bombs...),
			Limits: droplet.Limits{MaxBytes: 16 << 20}, Err: droplet.ErrLimitExceeded, Entry: "app/zero16"},
		{Name: "file over the per-file limit", Data: gz(Entry{Name: "app/big", Zeros: 2 << 20}),
			Limits: droplet.Limits{MaxFileBytes: 1 << 20}, Err: droplet.ErrLimitExceeded, Entry: "app/big"},
		{Name: "too many entries", Data: gz(many...),
			Limits: droplet.Limits{MaxEntries: 10}, Err: droplet.ErrLimitExceeded, Entry: "f10"},
		{Name: "too deep", Data: gz(Entry{Name: deep, Body: "deep"}),
			Err: droplet.ErrLimitExceeded, Entry: deep},
	}
}
