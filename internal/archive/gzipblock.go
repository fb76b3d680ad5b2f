package archive

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// Indexed gzip: a gzip file made of independent members, each holding
// GzipBlockSize bytes of input (the last one less), each with an extra
// header field (RFC 1952 FEXTRA, subfield "PK", 4 bytes) that gives the
// member's total compressed length. It is an ordinary gzip file: gzip -d,
// tar -xz and every gzip library read it, as the concatenation of its
// members. ExtractAuto recognises the subfield and, knowing where each
// member ends without decompressing it, inflates several members at once
// (as BGZF does for genomics files), where a plain gzip stream can only
// be inflated in one thread. The members being independent costs about
// one percent of compression. (pgzip compresses blocks in parallel too,
// but each block uses the previous one as its dictionary and all form one
// member, so its output can only be inflated in one thread.)

// GzipBlockSize is the input size of each member that GzipWriter writes.
const GzipBlockSize = 1 << 20

const (
	gzipFlagExtra  = 0x04
	gzipHeaderLen  = 10 + 2 + 8 // fixed header, XLEN, "PK" subfield
	gzipTrailerLen = 8          // CRC-32, ISIZE
	// maxGzipBlockOut bounds the output of one member on reading: members
	// written by GzipWriter hold at most GzipBlockSize bytes; more means a
	// forged stream, which must not make the reader allocate much.
	maxGzipBlockOut = 4 * GzipBlockSize
	// maxGzipBlockIn bounds a member's compressed length on reading
	// (incompressible input grows by a few bytes per 64 KiB).
	maxGzipBlockIn = GzipBlockSize + GzipBlockSize/16 + gzipHeaderLen + gzipTrailerLen
)

// GzipWriter compresses a stream to indexed gzip, compressing up to
// concurrency members at once and writing them in order. Output is
// deterministic: the same input and level give the same bytes whatever
// the concurrency. It is not safe for concurrent use; Close must be
// called (also after an error) to release its goroutines.
type GzipWriter struct {
	w     io.Writer
	level int
	cur   []byte
	queue chan *gzipBlock // blocks in write order; bounds what is in flight
	sem   chan struct{}   // bounds concurrent compressions
	done  chan struct{}   // closed when the write loop has finished
	ins   *freeList       // input blocks
	outs  *freeList       // compressed members

	submitted bool // a block was submitted
	closed    bool

	mu  sync.Mutex
	err error // first error of w or of a compression
}

type gzipBlock struct {
	in   []byte
	out  []byte
	err  error
	done chan struct{}
}

// flateWriters holds a pool of *flate.Writer per compression level
// (index level+2, from HuffmanOnly -2 to BestCompression 9).
var flateWriters [12]sync.Pool

// freeList keeps the buffers of one GzipWriter or reader for reuse. The
// number of buffers in use is bounded by design, so after warming up
// nothing is allocated, and nothing is kept once the owner is gone
// (sync.Pool would keep buffers for two garbage collections and drop
// them at the third, which costs both memory and allocations).
type freeList struct {
	ch   chan []byte
	size int
}

func newFreeList(n, size int) *freeList {
	return &freeList{ch: make(chan []byte, n), size: size}
}

// get returns an empty buffer of capacity size at least.
func (f *freeList) get() []byte {
	select {
	case b := <-f.ch:
		return b[:0]
	default:
		return make([]byte, 0, f.size)
	}
}

// put returns b to the list, or drops it when the list is full or b is
// not of the list's size.
func (f *freeList) put(b []byte) {
	if cap(b) < f.size {
		return
	}
	select {
	case f.ch <- b:
	default:
	}
}

// NewGzipWriter returns a GzipWriter on w. level is a compress/flate
// level (-2 to 9; -1 is the default, 6); concurrency below 1 means
// GOMAXPROCS. Memory use is about 4 MiB per unit of concurrency.
func NewGzipWriter(w io.Writer, level, concurrency int) (*GzipWriter, error) {
	if level < flate.HuffmanOnly || level > flate.BestCompression {
		return nil, fmt.Errorf("archive: gzip level %d outside %d..%d", level, flate.HuffmanOnly, flate.BestCompression)
	}
	if level == flate.DefaultCompression {
		level = 6
	}
	if concurrency < 1 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	z := &GzipWriter{
		w:     w,
		level: level,
		queue: make(chan *gzipBlock, concurrency),
		sem:   make(chan struct{}, concurrency),
		done:  make(chan struct{}),
		ins:   newFreeList(2*concurrency+2, GzipBlockSize),
		outs:  newFreeList(2*concurrency+2, maxGzipBlockIn),
	}
	z.cur = z.ins.get()
	go z.writeLoop()
	return z, nil
}

// Write compresses p. It returns an error of the underlying writer or of
// a compression as soon as one is known, and then keeps returning it.
func (z *GzipWriter) Write(p []byte) (int, error) {
	if err := z.error(); err != nil {
		return 0, err
	}
	if z.closed {
		return 0, errors.New("archive: write to closed GzipWriter")
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), GzipBlockSize-len(z.cur))
		z.cur = append(z.cur, p[:k]...)
		p, n = p[k:], n+k
		if len(z.cur) == GzipBlockSize {
			z.submit()
			if err := z.error(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Close compresses what is buffered, writes all members and waits for the
// goroutines. It does not close the underlying writer. It returns the
// first error met; calling it again returns the same result.
func (z *GzipWriter) Close() error {
	if z.closed {
		<-z.done
		return z.error()
	}
	z.closed = true
	// An empty stream is still one (empty) member, so the output is
	// valid gzip; otherwise a partial last block is flushed.
	if len(z.cur) > 0 || !z.submitted {
		z.submit()
	}
	close(z.queue)
	<-z.done
	return z.error()
}

func (z *GzipWriter) submit() {
	b := &gzipBlock{in: z.cur, done: make(chan struct{})}
	z.submitted = true
	z.cur = z.ins.get()
	z.sem <- struct{}{}
	go func() {
		defer func() { <-z.sem; close(b.done) }()
		b.out, b.err = compressBlock(z.outs.get(), b.in, z.level)
	}()
	z.queue <- b
}

// writeLoop writes the compressed blocks in order; after an error it
// only waits for and recycles them.
func (z *GzipWriter) writeLoop() {
	defer close(z.done)
	for b := range z.queue {
		<-b.done
		err := b.err
		if err == nil && z.error() == nil {
			_, err = z.w.Write(b.out)
		}
		if err != nil {
			z.setError(err)
		}
		z.ins.put(b.in)
		z.outs.put(b.out)
	}
}

func (z *GzipWriter) error() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *GzipWriter) setError(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.err == nil {
		z.err = err
	}
}

// compressBlock appends to out one gzip member holding in.
func compressBlock(out, in []byte, level int) ([]byte, error) {
	out = append(out,
		0x1f, 0x8b, 8, gzipFlagExtra, // magic, deflate, FEXTRA
		0, 0, 0, 0, // MTIME: none, for reproducible output
		0, 255, // XFL, OS unknown
		8, 0, // XLEN
		'P', 'K', 4, 0, // subfield id and length
		0, 0, 0, 0, // member length, set below
	)
	buf := bytes.NewBuffer(out)
	pool := &flateWriters[level+2]
	fw, _ := pool.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriter(buf, level); err != nil {
			return out, err
		}
	} else {
		fw.Reset(buf)
	}
	if _, err := fw.Write(in); err != nil {
		return out, err
	}
	if err := fw.Close(); err != nil {
		return out, err
	}
	pool.Put(fw)
	out = buf.Bytes()
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(in))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(in)))
	if len(out) > maxGzipBlockIn {
		return out, fmt.Errorf("archive: gzip member of %d bytes", len(out))
	}
	binary.LittleEndian.PutUint32(out[16:20], uint32(len(out)))
	return out, nil
}

// blockLength returns the total length of the member whose header starts
// hdr, when it is an indexed member (at least gzipHeaderLen bytes of hdr
// are needed), and whether it is one.
func blockLength(hdr []byte) (int, bool) {
	if len(hdr) < gzipHeaderLen || hdr[0] != 0x1f || hdr[1] != 0x8b || hdr[2] != 8 ||
		hdr[3] != gzipFlagExtra || hdr[10] != 8 || hdr[11] != 0 ||
		hdr[12] != 'P' || hdr[13] != 'K' || hdr[14] != 4 || hdr[15] != 0 {
		return 0, false
	}
	n := int(binary.LittleEndian.Uint32(hdr[16:20]))
	return n, true
}

// IsIndexedGzip reports whether head, the first bytes of a stream (at
// least 20), starts an indexed gzip member as GzipWriter writes them.
func IsIndexedGzip(head []byte) bool {
	_, ok := blockLength(head)
	return ok
}

// gzipBlockReader inflates an indexed gzip stream with several members in
// flight. A member without the index field (a plain gzip member appended
// to the stream) switches it to reading the rest in line.
type gzipBlockReader struct {
	results chan *gzipResult
	stop    chan struct{}
	wg      sync.WaitGroup
	ins     *freeList // compressed members
	outs    *freeList // inflated blocks

	cur  *gzipResult
	off  int
	tail io.Reader // set when the rest of the stream is plain gzip
	err  error
}

type gzipResult struct {
	out  []byte
	err  error
	tail io.Reader
	done chan struct{}
}

// maxInflaters bounds the members inflated at once: each holds about
// 2 MiB, and four keep up with writing files on any disk.
const maxInflaters = 4

// newGzipBlockReader starts inflating the indexed gzip stream in br with
// up to concurrency members at once (GOMAXPROCS, at most maxInflaters,
// when below 1). Close stops it; a Read of br that blocks delays Close
// until it returns.
func newGzipBlockReader(br *bufio.Reader, concurrency int) *gzipBlockReader {
	if concurrency < 1 {
		concurrency = min(runtime.GOMAXPROCS(0), maxInflaters)
	}
	z := &gzipBlockReader{
		results: make(chan *gzipResult, concurrency),
		stop:    make(chan struct{}),
		ins:     newFreeList(concurrency+1, maxGzipBlockIn),
		outs:    newFreeList(2*concurrency+2, GzipBlockSize+1),
	}
	z.wg.Add(1)
	go z.readLoop(br, concurrency)
	return z
}

// readLoop reads members and starts their inflation, passing results in
// order; it ends at the end of the stream, at an error or at Close.
func (z *gzipBlockReader) readLoop(br *bufio.Reader, concurrency int) {
	defer z.wg.Done()
	defer close(z.results)
	sem := make(chan struct{}, concurrency)
	send := func(r *gzipResult) bool {
		select {
		case z.results <- r:
			return true
		case <-z.stop:
			return false
		}
	}
	fail := func(err error) {
		r := &gzipResult{err: err, done: make(chan struct{})}
		close(r.done)
		send(r)
	}
	for {
		hdr, err := br.Peek(gzipHeaderLen)
		if len(hdr) == 0 && err == io.EOF {
			return // end of the stream, at a member boundary
		}
		n, ok := blockLength(hdr)
		if !ok {
			if len(hdr) >= 2 && hdr[0] == 0x1f && hdr[1] == 0x8b {
				// A plain member: read the rest of the stream in line.
				zr, err := gzip.NewReader(br)
				if err != nil {
					fail(err)
					return
				}
				r := &gzipResult{tail: zr, done: make(chan struct{})}
				close(r.done)
				send(r)
				return
			}
			if err == nil || err == io.EOF {
				err = gzip.ErrHeader
			}
			fail(err)
			return
		}
		if n < gzipHeaderLen+gzipTrailerLen || n > maxGzipBlockIn {
			fail(fmt.Errorf("gzip member length %d out of range", n))
			return
		}
		in := z.ins.get()[:n] // n ≤ maxGzipBlockIn, the list's size
		if _, err := io.ReadFull(br, in); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			fail(err)
			return
		}
		r := &gzipResult{done: make(chan struct{})}
		select {
		case sem <- struct{}{}:
		case <-z.stop:
			return
		}
		go func() {
			defer func() { <-sem; close(r.done) }()
			r.out, r.err = inflateBlock(in, z.outs)
			z.ins.put(in)
		}()
		if !send(r) {
			<-r.done
			return
		}
	}
}

var flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// inflateBlock checks and inflates one indexed member into a buffer of
// outs (or a new one, for a member larger than a block).
func inflateBlock(m []byte, outs *freeList) ([]byte, error) {
	tr := m[len(m)-gzipTrailerLen:]
	sum, size := binary.LittleEndian.Uint32(tr), binary.LittleEndian.Uint32(tr[4:])
	if size > maxGzipBlockOut {
		return nil, fmt.Errorf("gzip member of %d bytes exceeds %d", size, maxGzipBlockOut)
	}
	fr := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(fr)
	if err := fr.(flate.Resetter).Reset(bytes.NewReader(m[gzipHeaderLen:len(m)-gzipTrailerLen]), nil); err != nil {
		return nil, err
	}
	out := outs.get()
	if cap(out) < int(size)+1 {
		out = make([]byte, 0, int(size)+1)
	}
	out = out[:int(size)+1]
	n, err := io.ReadFull(fr, out)
	switch {
	case err == io.ErrUnexpectedEOF:
		// Expected: the member holds exactly size bytes, one less than asked.
	case err == nil:
		return nil, errors.New("gzip member longer than its recorded size")
	default:
		return nil, err
	}
	out = out[:n]
	if n != int(size) {
		return nil, fmt.Errorf("gzip member of %d bytes, %d recorded", n, size)
	}
	if crc32.ChecksumIEEE(out) != sum {
		return nil, gzip.ErrChecksum
	}
	return out, nil
}

// Read returns inflated bytes in stream order.
func (z *gzipBlockReader) Read(p []byte) (int, error) {
	for {
		if z.err != nil {
			return 0, z.err
		}
		if z.tail != nil {
			n, err := z.tail.Read(p)
			if err != nil {
				z.err = err
			}
			return n, err
		}
		if z.cur != nil && z.off < len(z.cur.out) {
			n := copy(p, z.cur.out[z.off:])
			z.off += n
			return n, nil
		}
		if z.cur != nil {
			z.outs.put(z.cur.out)
			z.cur = nil
		}
		r, ok := <-z.results
		if !ok {
			z.err = io.EOF
			continue
		}
		<-r.done
		if r.err != nil {
			z.err = r.err
			continue
		}
		if r.tail != nil {
			z.tail = r.tail
			continue
		}
		z.cur, z.off = r, 0
	}
}

// Close stops the read loop and waits for it and the inflations in flight.
func (z *gzipBlockReader) Close() error {
	select {
	case <-z.stop:
		return nil // closed before
	default:
		close(z.stop)
	}
	// The read loop, blocked on sending or on the semaphore, sees stop,
	// returns and closes results; what it sent is waited for here.
	for r := range z.results {
		<-r.done
	}
	z.wg.Wait()
	return nil
}
