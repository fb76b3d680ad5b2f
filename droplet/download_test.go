package droplet_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

func TestDownload(t *testing.T) {
	srv := droplettest.NewServer(t)
	data, sha := blob(20, 3<<20)
	uri := srv.Add(t, "droplets/app", data)
	r := openRegistry(t, t.TempDir())

	info, err := r.Download(t.Context(), sha, uri)
	require.NoError(t, err)
	assert.Equal(t, sha, info.SHA1)
	got, err := os.ReadFile(info.Path)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, 1, srv.Transfers("droplets/app"))

	// At most once: the registry has it now.
	again, err := r.Download(t.Context(), sha, uri)
	require.NoError(t, err)
	assert.Equal(t, info, again)
	assert.Equal(t, 1, srv.Transfers("droplets/app"))
	assertNoTmp(t, r)
}

func TestDownloadDedup(t *testing.T) {
	srv := droplettest.NewServer(t)
	data, sha := blob(21, 4<<20)
	uri := srv.Add(t, "droplets/app", data)
	r := openRegistry(t, t.TempDir())

	release := srv.Hold("droplets/app")
	const n = 100
	var wg sync.WaitGroup
	infos := make([]droplet.Info, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { infos[i], errs[i] = r.Download(t.Context(), sha, uri) })
	}
	// Wait until the one transfer is held at the server, then let it go.
	require.Eventually(t, func() bool { return srv.Counts("droplets/app").Gets == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // the other callers join meanwhile
	release()
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, sha, infos[i].SHA1)
	}
	c := srv.Counts("droplets/app")
	assert.Equal(t, 1, c.Gets, "one request")
	assert.Equal(t, 1, c.Transfers, "one transfer")
	assert.Equal(t, int64(len(data)), c.BytesSent)
	assertNoTmp(t, r)
}

func TestDownloadHashMismatch(t *testing.T) {
	srv := droplettest.NewServer(t)
	data, _ := blob(22, 100_000)
	_, wrong := blob(23, 10)
	uri := srv.Add(t, "droplets/app", data)
	r := openRegistry(t, t.TempDir())

	_, err := r.Download(t.Context(), wrong, uri)
	var hm *droplet.HashMismatchError
	require.ErrorAs(t, err, &hm)
	assert.ErrorIs(t, err, droplet.ErrHashMismatch)
	assert.Equal(t, wrong, hm.Expected)
	_, actual := blob(22, 100_000)
	assert.Equal(t, actual, hm.Actual)
	assert.Equal(t, uri, hm.Source)
	assert.False(t, r.Has(wrong))
	assert.False(t, r.Has(actual), "nothing is stored")
	assert.Equal(t, 1, srv.Transfers("droplets/app"), "a mismatch is not retried")
	assertNoTmp(t, r)
}

func TestDownloadRetry(t *testing.T) {
	data, sha := blob(24, 2<<20)
	t.Run("5xx then success", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		srv.Fail("d", http.StatusServiceUnavailable, 2)
		r := openRegistry(t, t.TempDir())
		info, err := r.Download(t.Context(), sha, uri)
		require.NoError(t, err)
		assert.Equal(t, sha, info.SHA1)
		assert.Equal(t, 3, srv.Counts("d").Gets)
	})
	t.Run("cut connections resume", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		srv.Cut("d", 512<<10, 2)
		r := openRegistry(t, t.TempDir())
		info, err := r.Download(t.Context(), sha, uri)
		require.NoError(t, err)
		assert.Equal(t, sha, info.SHA1)
		c := srv.Counts("d")
		assert.Equal(t, 3, c.Gets)
		assert.Equal(t, int64(len(data)), c.BytesSent, "the retries asked only for the rest")
	})
	t.Run("inactivity", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		srv.Stall("d", 100<<10, 1)
		r := openRegistry(t, t.TempDir(), droplet.WithInactivityTimeout(200*time.Millisecond))
		start := time.Now()
		info, err := r.Download(t.Context(), sha, uri)
		require.NoError(t, err)
		assert.Equal(t, sha, info.SHA1)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, 2, srv.Counts("d").Gets)
	})
	t.Run("gives up", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		srv.Fail("d", http.StatusBadGateway, 10)
		r := openRegistry(t, t.TempDir())
		_, err := r.Download(t.Context(), sha, uri)
		var se *droplet.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusBadGateway, se.StatusCode)
		assert.Equal(t, 3, srv.Counts("d").Gets, "WithRetry(3, ...) in openRegistry")
		assertNoTmp(t, r)
	})
	t.Run("no retry on 4xx", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		r := openRegistry(t, t.TempDir())
		_, err := r.Download(t.Context(), sha, srv.URL("missing"))
		assert.ErrorIs(t, err, droplet.ErrNotFound)
		var se *droplet.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 404, se.StatusCode)
		assert.Equal(t, 1, srv.Counts("missing").Gets)

		srv.Add(t, "forbidden", data)
		srv.Fail("forbidden", http.StatusForbidden, 5)
		_, err = r.Download(t.Context(), sha, srv.URL("forbidden"))
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusForbidden, se.StatusCode)
		assert.Equal(t, 1, srv.Counts("forbidden").Gets)

		// No 4xx is retried, not even 429.
		srv.Add(t, "busy", data)
		srv.Fail("busy", http.StatusTooManyRequests, 5)
		_, err = r.Download(t.Context(), sha, srv.URL("busy"))
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusTooManyRequests, se.StatusCode)
		assert.Equal(t, 1, srv.Counts("busy").Gets)
	})
	t.Run("too large", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		r := openRegistry(t, t.TempDir(), droplet.WithMaxDropletSize(1<<20))
		_, err := r.Download(t.Context(), sha, uri)
		assert.ErrorIs(t, err, droplet.ErrLimitExceeded)
		assert.Equal(t, 1, srv.Counts("d").Gets)
		assertNoTmp(t, r)
	})
}

func TestDownloadCancel(t *testing.T) {
	data, sha := blob(25, 2<<20)
	t.Run("the only caller", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		srv.Stall("d", 256<<10, 1)
		r := openRegistry(t, t.TempDir())
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			for srv.Counts("d").BytesSent < 256<<10 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := r.Download(ctx, sha, uri)
		assert.ErrorIs(t, err, context.Canceled)
		assert.False(t, r.Has(sha))
		assertNoTmp(t, r) // Download returns after the cleanup
	})
	t.Run("one of two callers", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		release := srv.Hold("d")
		r := openRegistry(t, t.TempDir())
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var errQuitter, errStayer error
		wg.Go(func() { _, errQuitter = r.Download(ctx, sha, uri) })
		wg.Go(func() { _, errStayer = r.Download(t.Context(), sha, uri) })
		require.Eventually(t, func() bool { return srv.Counts("d").Gets == 1 }, 5*time.Second, time.Millisecond)
		time.Sleep(10 * time.Millisecond)
		cancel()
		time.Sleep(10 * time.Millisecond)
		release()
		wg.Wait()
		assert.ErrorIs(t, errQuitter, context.Canceled)
		require.NoError(t, errStayer, "the transfer goes on for the other caller")
		assert.True(t, r.Has(sha))
		assert.Equal(t, 1, srv.Transfers("d"))
	})
	t.Run("close", func(t *testing.T) {
		srv := droplettest.NewServer(t)
		uri := srv.Add(t, "d", data)
		release := srv.Hold("d")
		defer release()
		r, err := droplet.OpenRegistry(t.TempDir())
		require.NoError(t, err)
		done := make(chan error)
		go func() {
			_, err := r.Download(t.Context(), sha, uri)
			done <- err
		}()
		require.Eventually(t, func() bool { return srv.Counts("d").Gets == 1 }, 5*time.Second, time.Millisecond)
		require.NoError(t, r.Close())
		assert.ErrorIs(t, <-done, droplet.ErrClosed)
		ents, err := os.ReadDir(r.Base() + "/tmp")
		require.NoError(t, err)
		assert.Empty(t, ents)
		_, err = r.Download(t.Context(), sha, uri)
		assert.ErrorIs(t, err, droplet.ErrClosed)
	})
}

func TestDownloadVerifiesStale(t *testing.T) {
	srv := droplettest.NewServer(t)
	data, sha := blob(26, 100_000)
	uri := srv.Add(t, "d", data)
	base := t.TempDir()
	r, err := droplet.OpenRegistry(base)
	require.NoError(t, err)
	_, err = r.Put(t.Context(), "", bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.NoError(t, os.Remove(base+"/droplets/"+sha+"/droplet.json"))

	r = openRegistry(t, base)
	assert.False(t, r.Has(sha))
	_, err = r.Download(t.Context(), sha, uri)
	require.NoError(t, err)
	assert.Equal(t, 0, srv.Counts("d").Gets, "re-hashed, not downloaded")

	// A corrupt one is downloaded again.
	require.NoError(t, os.WriteFile(base+"/droplets/"+sha+"/droplet.tgz", data[:10], 0o644))
	_, err = r.Download(t.Context(), sha, uri)
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Transfers("d"))
	got, err := os.ReadFile(base + "/droplets/" + sha + "/droplet.tgz")
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

func TestDownloadRedactsCredentials(t *testing.T) {
	srv := droplettest.NewServer(t)
	r := openRegistry(t, t.TempDir())
	_, sha := blob(27, 10)
	uri := "http://user:s3cret@" + srv.BaseURL()[len("http://"):] + "/missing"
	_, err := r.Download(t.Context(), sha, uri)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	var se *droplet.StatusError
	require.True(t, errors.As(err, &se))
}
