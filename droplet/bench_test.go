package droplet_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

// The comparisons with GNU tar are in examples/bench (-suite droplet);
// these measure the package alone, on a 32 MiB app tree.

func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "tree")
	st, err := droplettest.WriteTree(dir, droplettest.TreeSpec{Bytes: 32 << 20, Seed: 1})
	require.NoError(b, err)
	return dir, st.Bytes
}

func BenchmarkPack(b *testing.B) {
	dir, size := benchTree(b)
	for _, f := range []droplet.Format{droplet.Gzip, droplet.Zstd} {
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				_, err := droplet.Pack(b.Context(), dir, io.Discard, droplet.WithFormat(f))
				require.NoError(b, err)
			}
		})
	}
}

func BenchmarkUnpack(b *testing.B) {
	dir, size := benchTree(b)
	for _, f := range []droplet.Format{droplet.Gzip, droplet.Zstd} {
		b.Run(f.String(), func(b *testing.B) {
			var buf bytes.Buffer
			_, err := droplet.Pack(b.Context(), dir, &buf, droplet.WithFormat(f))
			require.NoError(b, err)
			out := b.TempDir()
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				dst := filepath.Join(out, fmt.Sprint(i))
				i++
				_, err := droplet.Unpack(b.Context(), bytes.NewReader(buf.Bytes()), dst, droplet.Limits{})
				require.NoError(b, err)
				b.StopTimer()
				require.NoError(b, os.RemoveAll(dst))
				b.StartTimer()
			}
		})
	}
}
