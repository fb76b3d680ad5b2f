package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Parallel writing of regular files (Options.Workers).
//
// The extracting goroutine reads each small file's content into a buffer
// and hands it, with a handle on its (already resolved and checked)
// parent directory, to a writer goroutine, which creates, writes and
// finishes the file. Everything else stays on the extracting goroutine,
// in archive order. Order is kept where it matters by these rules:
//
//   - an entry whose name, one of its parents, or (hard link) its target
//     is the name of a file handed out since the last sync, waits for the
//     writers (sync), so duplicates, links to pending files and entries
//     below a file name behave as in serial extraction;
//   - anything that removes files (clear) or closes directory handles
//     (flushDirs), and the end of extraction, sync first;
//   - a writer that finds its name taken (fs.ErrExist: something was
//     there before the archive) leaves the file to the next sync, which
//     replaces what is there as the serial path does.

const (
	// maxBufferedFile is the largest file handed to a writer.
	maxBufferedFile = 1 << 20
	// maxBufferedBytes bounds the file content held for the writers.
	maxBufferedBytes = 2 << 20
	// maxPending bounds the names remembered between syncs.
	maxPending = 4096
)

// fileJob is one file for a writer.
type fileJob struct {
	name  string // clean name
	hname string // name in the archive, for errors
	d     *os.Root
	base  string
	data  []byte
	meta  fileMeta
}

// writers is the pool of writer goroutines of one extraction. Files of
// one directory go to the same writer: creating entries in a directory
// takes its lock in the kernel, and writers contending for it spin.
type writers struct {
	x        *extractor
	jobs     []chan *fileJob
	budget   *semaphore.Weighted
	inFlight sync.WaitGroup // jobs handed out and not done
	done     sync.WaitGroup // the goroutines
	files    atomic.Int64   // files written by the writers
	stopped  bool

	// pending are the names handed out since the last sync; only the
	// extracting goroutine uses it.
	pending map[string]struct{}

	mu    sync.Mutex
	err   error      // first error of a writer, an *EntryError
	retry []*fileJob // jobs whose name was taken
}

func newWriters(x *extractor, n int) *writers {
	w := &writers{
		x:       x,
		jobs:    make([]chan *fileJob, n),
		budget:  semaphore.NewWeighted(maxBufferedBytes),
		pending: make(map[string]struct{}),
	}
	w.done.Add(n)
	for i := range w.jobs {
		w.jobs[i] = make(chan *fileJob, 16)
		go w.loop(w.jobs[i])
	}
	return w
}

// stop ends the goroutines after the jobs handed out are done. It may be
// called more than once, and on a nil *writers.
func (w *writers) stop() {
	if w == nil || w.stopped {
		return
	}
	w.stopped = true
	for _, ch := range w.jobs {
		close(ch)
	}
	w.done.Wait()
}

func (w *writers) loop(jobs <-chan *fileJob) {
	defer w.done.Done()
	for j := range jobs {
		taken, err := w.write(j)
		switch {
		case taken:
			w.mu.Lock()
			w.retry = append(w.retry, j) // keeps its buffer and budget
			w.mu.Unlock()
			w.inFlight.Done()
			continue
		case err != nil:
			w.setError(w.x.fsErr(j.hname, err))
		default:
			w.files.Add(1)
		}
		w.release(j)
		w.inFlight.Done()
	}
}

// write creates and writes one file. It reports whether the name was
// taken (the file is then left for sync).
func (w *writers) write(j *fileJob) (taken bool, err error) {
	f, err := openNew(j.d, j.base)
	if errors.Is(err, fs.ErrExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := f.Write(j.data); err != nil {
		f.Close()
		return false, err
	}
	return false, finishFile(f, j.d, j.base, j.meta)
}

// release returns a job's buffer and budget.
func (w *writers) release(j *fileJob) {
	w.budget.Release(int64(cap(j.data)))
	putBuf(j.data)
	j.data = nil
}

func (w *writers) setError(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// error returns the first error of a writer.
func (w *writers) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// dispatch reads the content of a small regular file and hands it to a
// writer.
func (x *extractor) dispatch(name string, hdr *tar.Header, tr *tar.Reader) error {
	meta, err := x.fileMeta(hdr)
	if err != nil {
		return err
	}
	// Resolve (and create) the parent here, in order, with the checks.
	d, base, err := x.parent(name)
	if err != nil {
		return err
	}
	buf := getBuf(int(hdr.Size))
	if !x.w.budget.TryAcquire(int64(cap(buf))) {
		// Wait for the writers; files left for a sync hold budget too.
		if err := x.sync(); err != nil {
			putBuf(buf)
			return err
		}
		if err := x.w.budget.Acquire(x.ctx, int64(cap(buf))); err != nil {
			putBuf(buf)
			return fmt.Errorf("archive: %w", err)
		}
	}
	j := &fileJob{name: name, hname: hdr.Name, d: d, base: base, data: buf[:hdr.Size], meta: meta}
	n, err := io.ReadFull(tr, j.data)
	x.stats.Bytes += int64(n)
	if err != nil {
		x.w.release(j)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return x.streamErr(hdr.Name, err)
	}
	if len(x.w.pending) >= maxPending {
		if err := x.sync(); err != nil {
			x.w.release(j)
			return err
		}
	}
	x.w.pending[name] = struct{}{}
	x.w.inFlight.Add(1)
	x.w.jobs[shard(path.Dir(name), len(x.w.jobs))] <- j
	return nil
}

// touchesPending reports whether the entry, or its hard-link target,
// names a file handed to the writers since the last sync, or a directory
// below such a name.
func (x *extractor) touchesPending(name string, hdr *tar.Header) bool {
	if len(x.w.pending) == 0 {
		return false
	}
	if underPending(x.w.pending, name) {
		return true
	}
	return hdr.Typeflag == tar.TypeLink && underPending(x.w.pending, path.Clean(hdr.Linkname))
}

// underPending reports whether name or one of its parents is in pending.
func underPending(pending map[string]struct{}, name string) bool {
	for p := name; ; p = path.Dir(p) {
		if _, ok := pending[p]; ok {
			return true
		}
		if !containsSlash(p) {
			return false
		}
	}
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// sync waits for the writers, writes the files they left (their name was
// taken) as the serial path does, and returns the first error. Without
// writers it does nothing.
func (x *extractor) sync() error {
	w := x.w
	if w == nil {
		return nil
	}
	w.inFlight.Wait()
	w.mu.Lock()
	retry := w.retry
	w.retry = nil
	err := w.err
	w.mu.Unlock()
	clear(w.pending)
	for i, j := range retry {
		if err == nil {
			err = x.rewrite(j)
		}
		w.release(j)
		retry[i] = nil
	}
	if err != nil {
		w.setError(err)
	}
	return err
}

// rewrite writes a file whose name was taken, replacing what is there.
func (x *extractor) rewrite(j *fileJob) error {
	var f *os.File
	d, base, err := x.create(j.name, func(d *os.Root, base string) error {
		var err error
		f, err = openNew(d, base)
		return err
	})
	if err == nil {
		if _, err = f.Write(j.data); err != nil {
			f.Close()
		} else {
			err = finishFile(f, d, base, j.meta)
		}
	}
	if err != nil {
		return x.fsErr(j.hname, err)
	}
	x.stats.Files++
	return nil
}

// statsNow returns the stats, the writers' files included.
func (x *extractor) statsNow() Stats {
	st := x.stats
	if x.w != nil {
		st.Files += int(x.w.files.Load())
	}
	return st
}

// Buffers for file contents, by size class (powers of two from 4 KiB to
// maxBufferedFile).
var bufPools [9]sync.Pool

func bufClass(n int) int {
	c := 0
	for size := 4 << 10; size < n; size <<= 1 {
		c++
	}
	return c
}

// getBuf returns a buffer of at least n bytes (n ≤ maxBufferedFile).
func getBuf(n int) []byte {
	c := bufClass(n)
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, (4<<10)<<c)
}

func putBuf(b []byte) {
	if b == nil {
		return
	}
	c := bufClass(cap(b))
	if (4<<10)<<c != cap(b) {
		return
	}
	b = b[:0]
	bufPools[c].Put(&b)
}

// shard picks the writer for the files of dir (FNV-1a).
func shard(dir string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(dir); i++ {
		h = (h ^ uint32(dir[i])) * 16777619
	}
	return int(h % uint32(n))
}
