package droplettest

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/internal/archive"
)

// TreeSpec describes a synthetic staged-app tree for [WriteTree]. The zero
// value is a 1 MiB tree with seed 0.
type TreeSpec struct {
	// Bytes is the approximate total size of the file data. 0 means 1 MiB.
	// The tree written is within a few percent of it, and never smaller
	// than about 64 KiB (the fixed files of the layout).
	Bytes int64
	// Seed selects the pseudo-random content: the same spec always writes
	// the same tree, byte for byte (modification times aside).
	Seed uint64
	// BinaryShare is the share of Bytes held in a few large binary-like
	// files (app/bin, app/vendor); the rest is many small text files.
	// 0 means 0.4; a negative value means no large files.
	BinaryShare float64
	// RandomBinaries fills the large files with random bytes, which do
	// not compress (like media or archives an app ships), in files of up
	// to 256 MiB, instead of bytes that compress about 2:1 (like
	// executables) in files of up to 32 MiB.
	RandomBinaries bool
}

// TreeStats says what [WriteTree] wrote.
type TreeStats struct {
	Files    int   // regular files
	Dirs     int   // directories below the root, the empty ones included
	Symlinks int   // symbolic links
	Bytes    int64 // bytes of file data
}

// WriteTree writes a synthetic staged-app tree described by spec into dir,
// which must not exist or be empty: many small text files that compress
// like source code, a few large binary-like files, symbolic links, empty
// directories, executable and read-only modes and non-ASCII names. It is
// meant for tests and benchmarks of packing, unpacking and transfers, and
// needs no testing.T. The layout follows the Diego buildpack lifecycle's
// droplet:
//
//	app/                        the compiled app
//	  .profile.d/setup.sh
//	  Procfile, package.json (0444), server.js
//	  bin/server                  large binary-like files (0755)
//	  vendor/bin/tool-N
//	  node_modules/<pkg>-N/...    many small text files
//	  node_modules/.bin/cli-N  -> ../<pkg>-N/bin/cli.js
//	  public/café/ñandú.txt       UTF-8 names
//	  current -> .                a link to a directory
//	  start -> bin/server
//	  empty/, tmp/cache/          empty directories
//	deps/0/config.yml, deps/0/bin/supply-tool
//	profile.d/000_multi-supply.sh
//	logs/, tmp/                   empty directories
//	staging_info.yml
//
// On error, what was written stays; remove dir.
func WriteTree(dir string, spec TreeSpec) (TreeStats, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return TreeStats{}, fmt.Errorf("droplettest: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return TreeStats{}, fmt.Errorf("droplettest: %w", err)
	} else if len(ents) > 0 {
		return TreeStats{}, fmt.Errorf("droplettest: %s is not empty: %w", dir, os.ErrExist)
	}
	return generate(dirSink{root: dir}, spec)
}

// WriteTarball writes the tree of [WriteTree] for spec as a droplet to
// w, without touching the disk: a tar stream whose entries all have the
// same fixed time, compressed in format (Gzip as Pack writes it but at
// the fastest level, Zstd, or Uncompressed). The same spec always gives
// the same bytes. It does not close w.
func WriteTarball(w io.Writer, spec TreeSpec, format droplet.Format) (TreeStats, error) {
	var zw io.WriteCloser
	switch format {
	case droplet.Gzip:
		gw, err := archive.NewGzipWriter(w, 1, 0)
		if err != nil {
			return TreeStats{}, fmt.Errorf("droplettest: %w", err)
		}
		zw = gw
	case droplet.Zstd:
		e, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return TreeStats{}, fmt.Errorf("droplettest: %w", err)
		}
		zw = e
	case droplet.Uncompressed:
		zw = nopCloser{w}
	default:
		return TreeStats{}, fmt.Errorf("droplettest: unknown format %v", format)
	}
	tw := tar.NewWriter(zw)
	st, err := generate(tarSink{tw: tw, mtime: fixedTime}, spec)
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, fmt.Errorf("droplettest: %w", err)
	}
	return st, nil
}

// fixedTime is the time of the entries of generated tarballs.
var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// generate sends the tree of spec to s.
func generate(s sink, spec TreeSpec) (TreeStats, error) {
	if spec.Bytes == 0 {
		spec.Bytes = 1 << 20
	}
	if spec.BinaryShare == 0 {
		spec.BinaryShare = 0.4
	}
	if spec.BinaryShare < 0 {
		spec.BinaryShare = 0
	}
	if spec.BinaryShare > 1 {
		return TreeStats{}, fmt.Errorf("droplettest: BinaryShare %v is above 1", spec.BinaryShare)
	}
	w := &treeWriter{sink: s, rnd: rand.New(rand.NewPCG(spec.Seed, 0x70616173)), made: map[string]bool{}}
	w.lines = makeLines(w.rnd, 4096)
	w.fixed()

	binBytes := int64(float64(spec.Bytes) * spec.BinaryShare)
	textBytes := spec.Bytes - binBytes - w.stats.Bytes
	if binBytes > 0 {
		// Files of up to 32 MiB (RandomBinaries: 256 MiB), at least one.
		per := int64(32 << 20)
		if spec.RandomBinaries {
			per = 256 << 20
		}
		n := int((binBytes + per - 1) / per)
		for i := range n {
			name := "app/bin/server"
			if i > 0 {
				name = fmt.Sprintf("app/vendor/bin/tool-%d", i)
			}
			w.binary(name, binBytes/int64(n), spec.RandomBinaries)
		}
	}
	for pkg := 0; textBytes > 0 && w.err == nil; pkg++ {
		textBytes -= w.pkg(pkg, textBytes)
	}
	if w.err != nil {
		return w.stats, fmt.Errorf("droplettest: %w", w.err)
	}
	return w.stats, nil
}

// sink receives the entries of a tree: a directory or a tar stream.
type sink interface {
	dir(name string, mode os.FileMode) error
	// file writes a regular file of size bytes, written to w by fill.
	file(name string, mode os.FileMode, size int64, fill func(w io.Writer) error) error
	symlink(name, target string) error
}

// treeWriter writes one tree; the first error sticks.
type treeWriter struct {
	sink  sink
	rnd   *rand.Rand
	lines [][]byte
	made  map[string]bool
	stats TreeStats
	err   error
	buf   []byte
}

// fixed writes the files and links every droplet has.
func (w *treeWriter) fixed() {
	w.file("staging_info.yml", 0o644, []byte(`{"detected_buildpack":"nodejs","start_command":"npm start"}`+"\n"))
	w.file("app/Procfile", 0o644, []byte("web: npm start\nworker: node worker.js\n"))
	w.file("app/.profile.d/setup.sh", 0o755, []byte("export NODE_ENV=production\n"))
	w.file("app/package.json", 0o444, []byte(`{"name":"app","version":"1.0.0","scripts":{"start":"node server.js"}}`+"\n"))
	w.file("app/public/café/ñandú.txt", 0o644, []byte("¡hola, mundo!\n"))
	w.file("app/public/日本語/ファイル.md", 0o644, []byte("# こんにちは\n"))
	w.file("deps/0/config.yml", 0o644, []byte("name: nodejs\nversion: 1.0.0\nconfig: {}\n"))
	w.file("deps/0/bin/supply-tool", 0o755, []byte("#!/bin/sh\nexit 0\n"))
	w.file("profile.d/000_multi-supply.sh", 0o644, []byte("export PATH=$DEPS_DIR/0/bin:$PATH\n"))
	w.text("app/server.js", 0o644, 16<<10)
	for _, d := range []string{"logs", "tmp", "app/empty", "app/tmp/cache"} {
		w.mkdir(d)
	}
	w.symlink("app/current", ".")
	w.symlink("app/start", "bin/server")
}

// pkg writes one node_modules package of up to budget bytes and returns
// the bytes written.
func (w *treeWriter) pkg(i int, budget int64) int64 {
	before := w.stats.Bytes
	name := fmt.Sprintf("app/node_modules/%s-%d", words[w.rnd.IntN(len(words))], i)
	w.file(name+"/package.json", 0o644, fmt.Appendf(nil, `{"name":"pkg-%d","main":"index.js"}`+"\n", i))
	w.text(name+"/index.js", 0o644, min(budget, int64(512+w.rnd.IntN(4<<10))))
	if i%4 == 0 {
		w.text(name+"/bin/cli.js", 0o755, 2<<10)
		w.symlink(fmt.Sprintf("app/node_modules/.bin/cli-%d", i), "../"+path.Base(name)+"/bin/cli.js")
	}
	nfiles := 2 + w.rnd.IntN(14)
	for f := 0; f < nfiles && w.stats.Bytes-before < budget; f++ {
		sub := "lib"
		if f%5 == 4 {
			sub = fmt.Sprintf("lib/%s/%s", words[w.rnd.IntN(len(words))], words[w.rnd.IntN(len(words))])
		}
		size := fileSize(w.rnd)
		w.text(fmt.Sprintf("%s/%s/%s%d.js", name, sub, words[w.rnd.IntN(len(words))], f), 0o644, min(size, budget-(w.stats.Bytes-before)))
	}
	if i%7 == 0 {
		w.text(name+"/README.md", 0o644, 3<<10)
	}
	return w.stats.Bytes - before
}

// fileSize draws a source file size: mostly 1 to 8 KiB, some up to 64 KiB.
func fileSize(r *rand.Rand) int64 {
	if r.IntN(10) == 0 {
		return int64(8<<10 + r.IntN(56<<10))
	}
	return int64(1<<10 + r.IntN(7<<10))
}

// mkdir makes name and its missing parents, mode 0755.
func (w *treeWriter) mkdir(name string) {
	if w.err != nil || name == "." || w.made[name] {
		return
	}
	w.mkdir(path.Dir(name))
	if w.err != nil {
		return
	}
	if w.err = w.sink.dir(name, 0o755); w.err != nil {
		return
	}
	w.made[name] = true
	w.stats.Dirs++
}

func (w *treeWriter) file(name string, mode os.FileMode, data []byte) {
	w.stream(name, mode, int64(len(data)), func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
}

func (w *treeWriter) stream(name string, mode os.FileMode, size int64, fill func(io.Writer) error) {
	w.mkdir(path.Dir(name))
	if w.err != nil {
		return
	}
	if w.err = w.sink.file(name, mode, size, fill); w.err != nil {
		return
	}
	w.stats.Files++
	w.stats.Bytes += size
}

func (w *treeWriter) symlink(name, target string) {
	w.mkdir(path.Dir(name))
	if w.err != nil {
		return
	}
	if w.err = w.sink.symlink(name, target); w.err != nil {
		return
	}
	w.stats.Symlinks++
}

// text writes a file of about size bytes of source-code-like lines.
func (w *treeWriter) text(name string, mode os.FileMode, size int64) {
	b := w.buf[:0]
	for int64(len(b)) < size {
		indent := w.rnd.IntN(4)
		b = append(b, "        "[:2*indent]...)
		b = append(b, w.lines[w.rnd.IntN(len(w.lines))]...)
	}
	w.buf = b
	w.file(name, mode, b)
}

// binary writes a file of size bytes. Unless random, it compresses like
// an executable: stretches of random bytes, of bytes from a small
// alphabet (like machine code) and of zeros (tables, padding).
func (w *treeWriter) binary(name string, size int64, random bool) {
	alphabet := make([]byte, 24)
	for i := range alphabet {
		alphabet[i] = byte(w.rnd.Uint32())
	}
	w.stream(name, 0o755, size, func(out io.Writer) error {
		chunk := make([]byte, 64<<10)
		for written := int64(0); written < size; {
			n := min(int64(len(chunk)), size-written)
			c := chunk[:n]
			k := w.rnd.IntN(10)
			if random {
				k = 0
			}
			switch {
			case k < 2: // random
				for i := 0; i < len(c); i += 8 {
					v := w.rnd.Uint64()
					for j := 0; j < 8 && i+j < len(c); j++ {
						c[i+j] = byte(v >> (8 * j))
					}
				}
			case k < 7: // small alphabet
				for i := 0; i < len(c); i += 8 {
					v := w.rnd.Uint64()
					for j := 0; j < 8 && i+j < len(c); j++ {
						c[i+j] = alphabet[int(v>>(8*j)&0xff)%len(alphabet)]
					}
				}
			default: // zeros with a few markers
				clear(c)
				for i := 0; i < len(c); i += 4096 {
					c[i] = byte(i >> 12)
				}
			}
			if _, err := out.Write(c); err != nil {
				return err
			}
			written += n
		}
		return nil
	})
}

// dirSink writes a tree below a directory.
type dirSink struct{ root string }

func (d dirSink) dir(name string, mode os.FileMode) error {
	err := os.Mkdir(filepath.Join(d.root, filepath.FromSlash(name)), mode)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	return err
}

func (d dirSink) file(name string, mode os.FileMode, _ int64, fill func(io.Writer) error) error {
	p := filepath.Join(d.root, filepath.FromSlash(name))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

func (d dirSink) symlink(name, target string) error {
	return os.Symlink(target, filepath.Join(d.root, filepath.FromSlash(name)))
}

// tarSink writes a tree as tar entries, all with the same time.
type tarSink struct {
	tw    *tar.Writer
	mtime time.Time
}

func (t tarSink) dir(name string, mode os.FileMode) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(mode.Perm()), ModTime: t.mtime})
}

func (t tarSink) file(name string, mode os.FileMode, size int64, fill func(io.Writer) error) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode.Perm()), Size: size, ModTime: t.mtime}); err != nil {
		return err
	}
	return fill(t.tw)
}

func (t tarSink) symlink(name, target string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: t.mtime})
}

// makeLines returns n lines of pseudo source code.
func makeLines(r *rand.Rand, n int) [][]byte {
	lines := make([][]byte, n)
	var sb strings.Builder
	for i := range lines {
		sb.Reset()
		switch r.IntN(6) {
		case 0:
			fmt.Fprintf(&sb, "function %s(%s, %s) {\n", pick(r), pick(r), pick(r))
		case 1:
			fmt.Fprintf(&sb, "const %s = require('%s/%s');\n", pick(r), pick(r), pick(r))
		case 2:
			fmt.Fprintf(&sb, "if (%s.%s === %d) { return %s; }\n", pick(r), pick(r), r.IntN(1000), pick(r))
		case 3:
			fmt.Fprintf(&sb, "// %s %s %s %s the %s\n", pick(r), pick(r), pick(r), pick(r), pick(r))
		case 4:
			fmt.Fprintf(&sb, "%s.%s(%s, '%s');\n", pick(r), pick(r), pick(r), pick(r))
		default:
			sb.WriteString("}\n")
		}
		lines[i] = []byte(sb.String())
	}
	return lines
}

func pick(r *rand.Rand) string { return words[r.IntN(len(words))] }

var words = strings.Fields(`
	app server request response handler router config options buffer stream
	value result error callback promise module exports index length count
	item items list map set key name path file data input output state
	cache store client socket event emitter listener timeout retry parse
	format render template view model query params body headers status
	user session token auth logger level debug info warn trace context
`)
