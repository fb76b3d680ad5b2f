package droplet_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/droplet"
)

// blob returns n pseudo-random bytes and their SHA-1.
func blob(seed uint64, n int) ([]byte, string) {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	sum := sha1.Sum(b)
	return b, hex.EncodeToString(sum[:])
}

func openRegistry(t *testing.T, base string, opts ...droplet.Option) *droplet.Registry {
	t.Helper()
	opts = append([]droplet.Option{droplet.WithRetry(3, time.Millisecond, 5*time.Millisecond)}, opts...)
	r, err := droplet.OpenRegistry(base, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.Close()) })
	return r
}

func TestRegistryPutGet(t *testing.T) {
	r := openRegistry(t, t.TempDir())
	data, sha := blob(1, 100_000)

	_, err := r.Get(sha)
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	assert.False(t, r.Has(sha))

	info, err := r.Put(t.Context(), "", bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, sha, info.SHA1)
	assert.Len(t, info.SHA256, 64)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.Equal(t, filepath.Join(r.Base(), "droplets", sha, "droplet.tgz"), info.Path)
	assert.Equal(t, info.Path, r.Path(sha))
	got, err := os.ReadFile(info.Path)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	assert.True(t, r.Has(sha))
	again, err := r.Get(sha)
	require.NoError(t, err)
	assert.Equal(t, info, again)
	upper, err := r.Get(string(bytes.ToUpper([]byte(sha))))
	require.NoError(t, err, "SHA-1s are case-insensitive")
	assert.Equal(t, info, upper)

	// Put of a droplet the registry has does not read the source.
	_, err = r.Put(t.Context(), sha, &errReader{r: bytes.NewReader(nil), err: assert.AnError})
	require.NoError(t, err)

	assert.Equal(t, droplet.Usage{Droplets: 1, Bytes: int64(len(data))}, r.Usage())
	assert.Equal(t, []droplet.Info{info}, r.List())
	assertNoTmp(t, r)
}

// assertNoTmp asserts that the registry's tmp directory is empty.
func assertNoTmp(t *testing.T, r *droplet.Registry) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.Base(), "tmp"))
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing is left in tmp")
}

func TestRegistryPutMismatch(t *testing.T) {
	r := openRegistry(t, t.TempDir())
	data, _ := blob(2, 1000)
	_, other := blob(3, 10)
	_, err := r.Put(t.Context(), other, bytes.NewReader(data))
	var hm *droplet.HashMismatchError
	require.ErrorAs(t, err, &hm)
	assert.ErrorIs(t, err, droplet.ErrHashMismatch)
	assert.Equal(t, other, hm.Expected)
	assert.False(t, r.Has(other))
	assert.Equal(t, droplet.Usage{}, r.Usage())
	assertNoTmp(t, r)
}

func TestRegistryInvalid(t *testing.T) {
	r := openRegistry(t, t.TempDir())
	for _, bad := range []string{"", "abc", "../../../../etc/passwd/xxxxxxxxxxxxxxxxxxx", "zz" + string(make([]byte, 38))} {
		_, err := r.Get(bad)
		assert.ErrorIs(t, err, droplet.ErrInvalid, bad)
		assert.ErrorIs(t, r.Destroy(t.Context(), bad), droplet.ErrInvalid)
		_, err = r.Download(t.Context(), bad, "http://x/y")
		assert.ErrorIs(t, err, droplet.ErrInvalid)
		assert.Empty(t, r.Path(bad))
	}
	_, sha := blob(4, 10)
	for _, uri := range []string{"", "ftp://host/x", "not a url", "http:///nohost"} {
		_, err := r.Download(t.Context(), sha, uri)
		assert.ErrorIs(t, err, droplet.ErrInvalid, uri)
	}
	_, err := r.Acquire(sha, "")
	assert.ErrorIs(t, err, droplet.ErrInvalid)
	_, err = droplet.OpenRegistry(t.TempDir(), droplet.WithRetry(0, 0, 0))
	assert.ErrorIs(t, err, droplet.ErrInvalid)
}

func TestRegistryLocalCopy(t *testing.T) {
	r := openRegistry(t, t.TempDir())
	data, sha := blob(5, 50_000)
	src := filepath.Join(t.TempDir(), "droplet.tgz")
	require.NoError(t, os.WriteFile(src, data, 0o600))

	info, err := r.LocalCopy(t.Context(), sha, src)
	require.NoError(t, err)
	assert.Equal(t, sha, info.SHA1)
	fi, err := os.Stat(info.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	assert.FileExists(t, src, "the source stays the caller's")
	require.NoError(t, os.Remove(src))
	assert.True(t, r.Has(sha))

	_, err = r.LocalCopy(t.Context(), "", filepath.Join(t.TempDir(), "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestRegistryDestroyAndRefs(t *testing.T) {
	r := openRegistry(t, t.TempDir())
	data, sha := blob(6, 1000)
	info, err := r.Put(t.Context(), sha, bytes.NewReader(data))
	require.NoError(t, err)

	ref1, err := r.Acquire(sha, "instance-1")
	require.NoError(t, err)
	ref2, err := r.Acquire(sha, "staging-7")
	require.NoError(t, err)
	ref3, err := r.Acquire(sha, "instance-1")
	require.NoError(t, err)
	assert.Equal(t, sha, ref1.SHA1())
	assert.Equal(t, "instance-1", ref1.User())
	assert.Equal(t, info.Path, ref1.Path())
	got, err := r.Get(sha)
	require.NoError(t, err)
	assert.Equal(t, []string{"instance-1", "staging-7"}, got.Users)

	err = r.Destroy(t.Context(), sha)
	assert.ErrorIs(t, err, droplet.ErrInUse)
	assert.Contains(t, err.Error(), "instance-1, staging-7")
	assert.True(t, r.Has(sha))

	ref1.Release()
	ref1.Release() // no effect the second time
	ref2.Release()
	assert.ErrorIs(t, r.Destroy(t.Context(), sha), droplet.ErrInUse, "instance-1 holds another reference")
	ref3.Release()

	require.NoError(t, r.Destroy(t.Context(), sha))
	assert.False(t, r.Has(sha))
	assert.NoDirExists(t, filepath.Dir(info.Path))
	require.NoError(t, r.Destroy(t.Context(), sha), "destroying what is gone succeeds")
	_, err = r.Acquire(sha, "instance-2")
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	assertNoTmp(t, r)
}

func TestRegistryReload(t *testing.T) {
	base := t.TempDir()
	r, err := droplet.OpenRegistry(base)
	require.NoError(t, err)
	d1, sha1 := blob(7, 10_000)
	d2, sha2 := blob(8, 20_000)
	d3, sha3 := blob(9, 30_000)
	for _, d := range [][]byte{d1, d2, d3} {
		_, err := r.Put(t.Context(), "", bytes.NewReader(d))
		require.NoError(t, err)
	}
	_, err = droplet.OpenRegistry(base)
	assert.ErrorIs(t, err, droplet.ErrInUse, "one registry per base directory")
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")
	_, err = r.Get(sha1)
	assert.ErrorIs(t, err, droplet.ErrClosed)

	// While it is closed: a crash left a transfer behind, droplet 2 is
	// corrupted in place, droplet 3 loses its record.
	require.NoError(t, os.WriteFile(filepath.Join(base, "tmp", "leftover"), []byte("x"), 0o644))
	p2 := filepath.Join(base, "droplets", sha2, "droplet.tgz")
	require.NoError(t, os.WriteFile(p2, append(d2[:len(d2)-1], 0), 0o644))
	require.NoError(t, os.Remove(filepath.Join(base, "droplets", sha3, "droplet.json")))
	require.NoError(t, os.MkdirAll(filepath.Join(base, "droplets", "not-a-sha1"), 0o755))

	r = openRegistry(t, base)
	assertNoTmp(t, r)
	assert.True(t, r.Has(sha1), "an intact droplet is trusted from its record")
	assert.False(t, r.Has(sha2), "a changed droplet awaits verification")
	assert.False(t, r.Has(sha3), "a droplet without a record awaits verification")
	assert.Len(t, r.List(), 3)

	info, err := r.Verify(t.Context(), sha3)
	require.NoError(t, err)
	assert.Equal(t, sha3, info.SHA1)
	assert.True(t, r.Has(sha3))

	_, err = r.Verify(t.Context(), sha2)
	var hm *droplet.HashMismatchError
	require.ErrorAs(t, err, &hm)
	assert.Equal(t, sha2, hm.Expected)
	assert.False(t, r.Has(sha2))
	assert.NoDirExists(t, filepath.Dir(p2), "a corrupt droplet is removed")
	_, err = r.Verify(t.Context(), sha2)
	assert.ErrorIs(t, err, droplet.ErrNotFound)

	// A change after opening is noticed by the cheap check.
	p1 := filepath.Join(base, "droplets", sha1, "droplet.tgz")
	require.NoError(t, os.WriteFile(p1, d1[:100], 0o644))
	assert.False(t, r.Has(sha1))
	_, err = r.Get(sha1)
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	require.NoError(t, os.WriteFile(p1, d1, 0o644))
	_, err = r.Verify(t.Context(), sha1)
	require.NoError(t, err, "verification accepts the restored droplet")
	assert.True(t, r.Has(sha1))
}

func TestRegistryReap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := t.TempDir()
		r, err := droplet.OpenRegistry(base, droplet.WithReapInterval(time.Minute), droplet.WithReapGrace(5*time.Minute))
		require.NoError(t, err)
		defer r.Close()
		kept, shaKept := blob(10, 1000)
		gone, shaGone := blob(11, 1000)
		_, err = r.Put(t.Context(), "", bytes.NewReader(kept))
		require.NoError(t, err)
		_, err = r.Put(t.Context(), "", bytes.NewReader(gone))
		require.NoError(t, err)
		ref, err := r.Acquire(shaKept, "instance-1")
		require.NoError(t, err)

		time.Sleep(4 * time.Minute)
		synctest.Wait()
		assert.True(t, r.Has(shaGone), "within the grace")

		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		assert.False(t, r.Has(shaGone), "reaped after the grace")
		assert.True(t, r.Has(shaKept), "a referenced droplet is kept")

		ref.Release()
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		assert.True(t, r.Has(shaKept), "grace counts from the release")
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		assert.False(t, r.Has(shaKept))
		assert.Equal(t, droplet.Usage{}, r.Usage())
	})
}

func TestRegistryReapManual(t *testing.T) {
	r := openRegistry(t, t.TempDir(), droplet.WithReapGrace(0))
	a, shaA := blob(12, 10)
	b, shaB := blob(13, 10)
	for _, d := range [][]byte{a, b} {
		_, err := r.Put(t.Context(), "", bytes.NewReader(d))
		require.NoError(t, err)
	}
	ref, err := r.Acquire(shaA, "u")
	require.NoError(t, err)
	defer ref.Release()
	reaped, err := r.Reap(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{shaB}, reaped)
	assert.True(t, r.Has(shaA))
}
