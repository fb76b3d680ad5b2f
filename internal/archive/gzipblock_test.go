package archive_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/internal/archive"
)

// indexed compresses b with a GzipWriter.
func indexed(t testing.TB, b []byte, level, concurrency int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := archive.NewGzipWriter(&buf, level, concurrency)
	require.NoError(t, err)
	// Odd write sizes cross block boundaries.
	for len(b) > 0 {
		n := min(len(b), 100_003)
		_, err := zw.Write(b[:n])
		require.NoError(t, err)
		b = b[n:]
	}
	require.NoError(t, zw.Close())
	require.NoError(t, zw.Close(), "Close is idempotent")
	return buf.Bytes()
}

// mixedData returns n bytes that compress about 2:1.
func mixedData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			if j%3 == 0 {
				b[i+j] = byte(v >> (8 * j))
			} else {
				b[i+j] = 'a' + byte(v>>(8*j))&7
			}
		}
	}
	return b
}

func TestGzipWriterIsGzip(t *testing.T) {
	for _, size := range []int{0, 1, archive.GzipBlockSize, 3*archive.GzipBlockSize + 12345} {
		data := mixedData(size)
		z := indexed(t, data, 6, 3)
		assert.True(t, archive.IsIndexedGzip(z))
		assert.Equal(t, archive.Gzip, archive.Detect(z))

		// Any gzip reader reads it as one stream.
		zr, err := gzip.NewReader(bytes.NewReader(z))
		require.NoError(t, err)
		got, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.Equal(t, data, got, "size %d", size)

		if gz, err := exec.LookPath("gzip"); err == nil {
			cmd := exec.Command(gz, "-dc")
			cmd.Stdin = bytes.NewReader(z)
			out, err := cmd.Output()
			require.NoError(t, err)
			assert.Equal(t, data, out)
		}
	}
}

func TestGzipWriterDeterministic(t *testing.T) {
	data := mixedData(3*archive.GzipBlockSize + 7)
	a := indexed(t, data, 5, 1)
	assert.Equal(t, a, indexed(t, data, 5, 2))
	assert.Equal(t, a, indexed(t, data, 5, 8))
	assert.NotEqual(t, a, indexed(t, data, 9, 2))
	_, err := archive.NewGzipWriter(io.Discard, 10, 1)
	assert.Error(t, err)
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		return 0, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestGzipWriterErrors(t *testing.T) {
	zw, err := archive.NewGzipWriter(&failingWriter{after: 100}, 1, 2)
	require.NoError(t, err)
	data := mixedData(4 * archive.GzipBlockSize)
	var werr error
	for i := 0; i < len(data) && werr == nil; i += 1 << 16 {
		_, werr = zw.Write(data[i : i+1<<16])
	}
	cerr := zw.Close()
	assert.EqualError(t, cerr, "disk full")
	if werr != nil {
		assert.EqualError(t, werr, "disk full")
	}
	_, err = zw.Write([]byte("x"))
	assert.Error(t, err, "no write after an error or Close")
}

func TestExtractIndexedGzip(t *testing.T) {
	// A tar stream of several blocks.
	var ents []ent
	body := mixedData(3 << 20)
	for i := range 25 {
		ents = append(ents, ent{name: "f" + itoa(i), body: string(body[i*100_000 : (i+1)*100_000+i])})
	}
	plain := tarball(t, ents...)
	good := indexed(t, plain, 6, 2)
	require.Greater(t, len(good), archive.GzipBlockSize)

	t.Run("extracts", func(t *testing.T) {
		s := newSandbox(t)
		st, err := archive.ExtractAuto(t.Context(), bytes.NewReader(good), s.dest, archive.Options{})
		require.NoError(t, err)
		assert.Equal(t, 25, st.Files)
		ref := newSandbox(t)
		_, err = archive.ExtractAuto(t.Context(), bytes.NewReader(gzipped(t, plain)), ref.dest, archive.Options{})
		require.NoError(t, err)
		assert.Equal(t, tree(t, ref.dest), tree(t, s.dest))
	})
	t.Run("plain members appended", func(t *testing.T) {
		// Indexed members, then a plain gzip member: still one stream.
		half := len(plain) / 2 / 512 * 512
		mixed := append(indexed(t, plain[:half], 6, 2), gzipped(t, plain[half:])...)
		s := newSandbox(t)
		st, err := archive.ExtractAuto(t.Context(), bytes.NewReader(mixed), s.dest, archive.Options{})
		require.NoError(t, err)
		assert.Equal(t, 25, st.Files)
	})
	bad := map[string][]byte{
		"truncated":        good[:len(good)*2/3],
		"flipped body":     flipByte(good, len(good)/2),
		"flipped crc":      flipByte(good, memberEnd(t, good)-6),
		"flipped length":   flipByte(good, 17),
		"trailing garbage": append(bytes.Clone(good), []byte("garbage after the stream")...),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := archive.ExtractAuto(t.Context(), bytes.NewReader(data), s.dest, archive.Options{})
			assert.ErrorIs(t, err, archive.ErrBadArchive)
		})
	}
	t.Run("read error is not a bad archive", func(t *testing.T) {
		s := newSandbox(t)
		boom := errors.New("network down")
		r := io.MultiReader(bytes.NewReader(good[:len(good)/2]), errorReader{boom})
		_, err := archive.ExtractAuto(t.Context(), r, s.dest, archive.Options{})
		assert.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, archive.ErrBadArchive)
	})
	t.Run("forged huge member", func(t *testing.T) {
		// A member claiming to inflate to far more than a block.
		var buf bytes.Buffer
		zw, err := archive.NewGzipWriter(&buf, 9, 1)
		require.NoError(t, err)
		_, err = zw.Write(make([]byte, 1000))
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		b := buf.Bytes()
		b[len(b)-1] = 0x7f // ISIZE: about 2 GiB
		s := newSandbox(t)
		_, err = archive.ExtractAuto(t.Context(), bytes.NewReader(b), s.dest, archive.Options{})
		assert.ErrorIs(t, err, archive.ErrBadArchive)
	})
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

// memberEnd returns the end of the first member of an indexed stream.
func memberEnd(t *testing.T, b []byte) int {
	t.Helper()
	require.True(t, archive.IsIndexedGzip(b))
	return int(b[16]) | int(b[17])<<8 | int(b[18])<<16 | int(b[19])<<24
}
