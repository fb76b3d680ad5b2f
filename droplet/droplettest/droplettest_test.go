package droplettest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func get(t *testing.T, srv *droplettest.Server, key string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL(key), nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestServerCounts(t *testing.T) {
	srv := droplettest.NewServer(t)
	data := bytes.Repeat([]byte("droplet"), 10_000)
	url := srv.Add(t, "droplets/a", data)
	assert.Equal(t, srv.BaseURL()+"/droplets/a", url)

	resp, body, err := get(t, srv, "droplets/a")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, data, body)
	_, body, err = get(t, srv, "droplets/a", "Range", "bytes=10-19")
	require.NoError(t, err)
	assert.Equal(t, data[10:20], body)
	_, _, err = get(t, srv, "droplets/missing")
	require.NoError(t, err)

	c := srv.Counts("droplets/a")
	assert.Equal(t, 2, c.Gets)
	assert.Equal(t, 2, c.Transfers)
	assert.Equal(t, int64(len(data)+10), c.BytesSent)
	assert.Equal(t, 0, srv.Transfers("droplets/missing"), "a 404 is no transfer")
	assert.Equal(t, 1, srv.Counts("droplets/missing").Gets)

	store, err := droplet.NewHTTPStore(srv.BaseURL(), srv.Client())
	require.NoError(t, err)
	require.NoError(t, store.Put(t.Context(), "x", bytes.NewReader([]byte("y"))))
	require.NoError(t, store.Delete(t.Context(), "x"))
	_, err = store.Head(t.Context(), "x")
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	c = srv.Counts("x")
	assert.Equal(t, droplettest.Counts{Puts: 1, Deletes: 1, Heads: 1}, c)
}

func TestServerFaults(t *testing.T) {
	srv := droplettest.NewServer(t)
	data := bytes.Repeat([]byte("0123456789"), 50_000)
	srv.Add(t, "k", data)

	srv.Fail("k", http.StatusServiceUnavailable, 1)
	resp, _, err := get(t, srv, "k")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	srv.Cut("k", 1000, 1)
	_, body, err := get(t, srv, "k")
	assert.Error(t, err, "the connection is dropped")
	assert.Len(t, body, 1000)

	_, body, err = get(t, srv, "k")
	require.NoError(t, err, "faults are used up")
	assert.Equal(t, data, body)
	c := srv.Counts("k")
	assert.Equal(t, 3, c.Gets)
	assert.Equal(t, 2, c.Faults)
	assert.Equal(t, 2, c.Transfers, "the cut one started")

	srv.Stall("k", 100, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL("k"), nil)
	require.NoError(t, err)
	resp, err = srv.Client().Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, b, 100)
}

func TestServerHold(t *testing.T) {
	srv := droplettest.NewServer(t)
	srv.Add(t, "k", []byte("held"))
	release := srv.Hold("k")
	done := make(chan []byte)
	go func() {
		_, b, _ := get(t, srv, "k")
		done <- b
	}()
	select {
	case <-done:
		t.Fatal("a held request was answered")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	release()
	assert.Equal(t, "held", string(<-done))

	// Close releases held requests.
	srv2, err := droplettest.StartServer(t.TempDir())
	require.NoError(t, err)
	srv2.Hold("k")
	go func() {
		resp, err := srv2.Client().Get(srv2.URL("k"))
		if err == nil {
			resp.Body.Close()
		}
		done <- nil
	}()
	require.Eventually(t, func() bool { return srv2.Counts("k").Gets == 1 }, 5*time.Second, time.Millisecond)
	srv2.Close()
	<-done
}

func TestWriteTree(t *testing.T) {
	dir := t.TempDir()
	st, err := droplettest.WriteTree(dir, droplettest.TreeSpec{Bytes: 2 << 20, Seed: 7})
	require.NoError(t, err)
	assert.InDelta(t, 2<<20, float64(st.Bytes), 0.05*(2<<20))
	assert.Greater(t, st.Files, 50)
	assert.Greater(t, st.Symlinks, 2)
	for _, p := range []string{"app/Procfile", "staging_info.yml", "app/public/café/ñandú.txt", "app/bin/server", "profile.d/000_multi-supply.sh"} {
		assert.FileExists(t, filepath.Join(dir, p))
	}
	for _, p := range []string{"logs", "tmp", "app/empty"} {
		ents, err := os.ReadDir(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.Empty(t, ents, p)
	}
	fi, err := os.Stat(filepath.Join(dir, "app/bin/server"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())

	// Deterministic for a seed; another seed differs.
	same := t.TempDir()
	_, err = droplettest.WriteTree(same, droplettest.TreeSpec{Bytes: 2 << 20, Seed: 7})
	require.NoError(t, err)
	assert.Equal(t, digestTree(t, dir), digestTree(t, same))
	other := t.TempDir()
	_, err = droplettest.WriteTree(other, droplettest.TreeSpec{Bytes: 2 << 20, Seed: 8})
	require.NoError(t, err)
	assert.NotEqual(t, digestTree(t, dir), digestTree(t, other))

	_, err = droplettest.WriteTree(dir, droplettest.TreeSpec{})
	assert.ErrorIs(t, err, fs.ErrExist, "the directory must be empty")
}

// digestTree hashes the names, modes and contents of a tree.
func digestTree(t *testing.T, root string) string {
	t.Helper()
	h := sha1.New()
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		io.WriteString(h, rel+fi.Mode().String())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			io.WriteString(h, l)
		}
		return nil
	}))
	return hex.EncodeToString(h.Sum(nil))
}

func TestWriteTarballMatchesWriteTree(t *testing.T) {
	spec := droplettest.TreeSpec{Bytes: 1 << 20, Seed: 3, RandomBinaries: true}
	tree := t.TempDir()
	wantStats, err := droplettest.WriteTree(tree, spec)
	require.NoError(t, err)
	for _, f := range []droplet.Format{droplet.Gzip, droplet.Zstd, droplet.Uncompressed} {
		t.Run(f.String(), func(t *testing.T) {
			var buf bytes.Buffer
			st, err := droplettest.WriteTarball(&buf, spec, f)
			require.NoError(t, err)
			assert.Equal(t, wantStats, st)
			dst := filepath.Join(t.TempDir(), "d")
			ust, err := droplet.Unpack(t.Context(), &buf, dst, droplet.Limits{})
			require.NoError(t, err)
			assert.Equal(t, f, ust.Format)
			assert.Equal(t, digestTree(t, tree), digestTree(t, dst))
		})
	}
}

func TestTarball(t *testing.T) {
	data := droplettest.Tarball(t, droplet.Gzip,
		droplettest.Entry{Name: "../x", Body: "hello"},
		droplettest.Entry{Name: "d/", Type: tar.TypeDir},
		droplettest.Entry{Name: "l", Type: tar.TypeSymlink, Link: "/etc"},
		droplettest.Entry{Name: "z", Zeros: 1 << 20},
	)
	assert.Less(t, len(data), 64<<10, "zeros compress")
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var got []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, hdr.Name)
		if hdr.Name == "z" {
			assert.Equal(t, int64(1<<20), hdr.Size)
		}
	}
	assert.Equal(t, []string{"../x", "d/", "l", "z"}, got, "names are kept as they are")
}

func TestHostileTarballs(t *testing.T) {
	cases := droplettest.HostileTarballs(t)
	assert.GreaterOrEqual(t, len(cases), 15)
	names := map[string]bool{}
	for _, h := range cases {
		assert.False(t, names[h.Name], "duplicate case %q", h.Name)
		names[h.Name] = true
		assert.NotEmpty(t, h.Data)
		assert.NotEmpty(t, h.Entry)
		assert.Error(t, h.Err)
		// Each is refused by Unpack (the droplet package tests check the
		// details and that nothing is left behind).
		_, err := droplet.Unpack(t.Context(), bytes.NewReader(h.Data), filepath.Join(t.TempDir(), "d"), h.Limits)
		assert.ErrorIs(t, err, h.Err, h.Name)
	}
}
