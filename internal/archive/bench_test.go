package archive_test

import (
	"archive/tar"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/internal/archive"
)

// benchArchive writes a tar.gz of about 50 MiB of file data to dir: 6,000
// small files (0.5 to 8 KiB) in 240 directories and three 8 MiB files,
// all text-like data that gzip compresses about 3:1. It returns the
// archive's path and the bytes of file data in it.
func benchArchive(b *testing.B, dir string) (string, int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	words := make([][]byte, 1024)
	for i := range words {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = append(w, ' ')
	}
	text := func(n int) []byte {
		out := make([]byte, 0, n+16)
		for len(out) < n {
			out = append(out, words[rng.IntN(len(words))]...)
		}
		return out[:n]
	}

	p := filepath.Join(dir, "bench.tar.gz")
	f, err := os.Create(p)
	require.NoError(b, err)
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	var total int64
	add := func(name string, body []byte) {
		require.NoError(b, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}))
		_, err := tw.Write(body)
		require.NoError(b, err)
		total += int64(len(body))
	}
	for d := range 240 {
		dname := fmt.Sprintf("app/d%02d/sub%d/", d/4, d%4)
		require.NoError(b, tw.WriteHeader(&tar.Header{Name: dname, Typeflag: tar.TypeDir, Mode: 0o755}))
		for i := range 25 {
			add(fmt.Sprintf("%sf%03d.txt", dname, i), text(512+rng.IntN(8*1024-512)))
		}
	}
	for i := range 3 {
		add(fmt.Sprintf("app/large%d.bin", i), text(8<<20))
	}
	require.NoError(b, tw.Close())
	require.NoError(b, zw.Close())
	require.NoError(b, f.Close())
	return p, total
}

// BenchmarkExtract extracts the same tar.gz with ExtractAuto and with GNU
// tar (which decompresses in a separate gzip process), into a fresh
// directory each time. On a slow disk both mostly measure the disk: run
// with TMPDIR=/dev/shm to compare the CPU cost.
func BenchmarkExtract(b *testing.B) {
	base := b.TempDir()
	src, size := benchArchive(b, base)
	if fi, err := os.Stat(src); err == nil {
		b.Logf("archive: %d bytes compressed, %d bytes of file data", fi.Size(), size)
	}
	run := func(b *testing.B, extract func(dest string) error) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dest, err := os.MkdirTemp(base, "dest-")
			require.NoError(b, err)
			b.StartTimer()
			require.NoError(b, extract(dest))
			b.StopTimer()
			require.NoError(b, os.RemoveAll(dest))
			b.StartTimer()
		}
	}
	b.Run("paaskit", func(b *testing.B) {
		run(b, func(dest string) error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = archive.ExtractAuto(b.Context(), f, dest, archive.Options{})
			return err
		})
	})
	b.Run("gnu-tar", func(b *testing.B) {
		tarPath, err := exec.LookPath("tar")
		if err != nil {
			b.Skip("gnu-tar: no tar in PATH")
		}
		run(b, func(dest string) error {
			out, err := exec.CommandContext(b.Context(), tarPath, "-xzf", src, "-C", dest).CombinedOutput()
			if err != nil {
				return fmt.Errorf("tar: %w: %s", err, out)
			}
			return nil
		})
	})
}
