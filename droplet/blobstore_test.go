package droplet_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

func TestValidKey(t *testing.T) {
	for _, good := range []string{"a", "droplets/5f3c-guid", "buildpack_cache/app/cflinuxfs4", "a/b.c/d_e-f+g@h"} {
		assert.NoError(t, droplet.ValidKey(good), good)
	}
	for _, bad := range []string{"", "/abs", "a//b", "a/../b", "..", ".", ".tmp/x", "a/.hidden", "trailing/", `back\slash`, "nul\x00", strings.Repeat("k", 1025), "bad\xffutf8"} {
		assert.ErrorIs(t, droplet.ValidKey(bad), droplet.ErrInvalid, "%q", bad)
	}
}

// storeContract checks the BlobStore behaviour every implementation has.
func storeContract(t *testing.T, s droplet.BlobStore) {
	ctx := t.Context()
	_, err := s.Get(ctx, "packages/nope")
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	_, err = s.Head(ctx, "packages/nope")
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	assert.NoError(t, s.Delete(ctx, "packages/nope"), "deleting nothing succeeds")

	data, _ := blob(30, 300_000)
	require.NoError(t, s.Put(ctx, "packages/app", bytes.NewReader(data)))
	info, err := s.Head(ctx, "packages/app")
	require.NoError(t, err)
	assert.Equal(t, "packages/app", info.Key)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.False(t, info.ModTime.IsZero())
	rc, err := s.Get(ctx, "packages/app")
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, data, got)

	// Replace, with a reader of unknown length, and empty blobs.
	require.NoError(t, s.Put(ctx, "packages/app", io.MultiReader(strings.NewReader("new "), strings.NewReader("content"))))
	rc, err = s.Get(ctx, "packages/app")
	require.NoError(t, err)
	got, _ = io.ReadAll(rc)
	rc.Close()
	assert.Equal(t, "new content", string(got))
	require.NoError(t, s.Put(ctx, "empty", bytes.NewReader(nil)))
	info, err = s.Head(ctx, "empty")
	require.NoError(t, err)
	assert.Zero(t, info.Size)

	// A key below a blob, or naming a directory of blobs, is not a blob.
	_, err = s.Get(ctx, "packages/app/below")
	assert.ErrorIs(t, err, droplet.ErrNotFound)
	_, err = s.Get(ctx, "packages")
	assert.ErrorIs(t, err, droplet.ErrNotFound)

	require.NoError(t, s.Delete(ctx, "packages/app"))
	_, err = s.Head(ctx, "packages/app")
	assert.ErrorIs(t, err, droplet.ErrNotFound)

	assert.ErrorIs(t, s.Put(ctx, "../escape", strings.NewReader("x")), droplet.ErrInvalid)
	_, err = s.Get(ctx, "a/../../b")
	assert.ErrorIs(t, err, droplet.ErrInvalid)
}

func TestDirStore(t *testing.T) {
	dir := t.TempDir()
	s, err := droplet.NewDirStore(dir)
	require.NoError(t, err)
	assert.Equal(t, dir, s.Dir())
	storeContract(t, s)

	ents, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	require.NoError(t, err)
	assert.Empty(t, ents, "no temporary file is left")

	// A symbolic link placed in the store does not lead out of it.
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))
	_, err = s.Get(t.Context(), "link/secret")
	assert.Error(t, err)
	err = s.Put(t.Context(), "link/evil", strings.NewReader("x"))
	assert.Error(t, err)
	assert.NoFileExists(t, filepath.Join(outside, "evil"))

	// A failed Put leaves the old blob and no temporary file.
	require.NoError(t, s.Put(t.Context(), "keep", strings.NewReader("old")))
	err = s.Put(t.Context(), "keep", &errReader{r: strings.NewReader("partial"), err: assert.AnError})
	assert.ErrorIs(t, err, assert.AnError)
	b, err := os.ReadFile(filepath.Join(dir, "keep"))
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	ents, err = os.ReadDir(filepath.Join(dir, ".tmp"))
	require.NoError(t, err)
	assert.Empty(t, ents)
}

func TestHTTPStore(t *testing.T) {
	srv := droplettest.NewServer(t)
	s, err := droplet.NewHTTPStore(srv.BaseURL()+"/", srv.Client())
	require.NoError(t, err)
	assert.Equal(t, srv.URL("a/b"), s.URL("a/b"))
	storeContract(t, s)

	_, err = droplet.NewHTTPStore("ftp://x", nil)
	assert.ErrorIs(t, err, droplet.ErrInvalid)

	// Server errors come back as *StatusError.
	srv.Add(t, "flaky", []byte("x"))
	srv.Fail("flaky", http.StatusInternalServerError, 1)
	_, err = s.Get(t.Context(), "flaky")
	var se *droplet.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.StatusCode)
	assert.True(t, se.Temporary())
}

func TestHandler(t *testing.T) {
	store, err := droplet.NewDirStore(t.TempDir())
	require.NoError(t, err)
	h := &droplet.Handler{Store: store, MaxUploadSize: 1 << 20}
	srv := httptest.NewServer(http.StripPrefix("/blobs", h))
	defer srv.Close()
	url := srv.URL + "/blobs/droplets/app"
	do := func(method, u string, body io.Reader, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, u, body)
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	read := func(resp *http.Response) string {
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}

	data, _ := blob(31, 100_000)
	resp := do(http.MethodPut, url, bytes.NewReader(data))
	assert.Equal(t, http.StatusCreated, resp.StatusCode)

	resp = do(http.MethodGet, url, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, string(data), read(resp))
	assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))

	resp = do(http.MethodGet, url, nil, "Range", "bytes=1000-1999")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, fmt.Sprintf("bytes 1000-1999/%d", len(data)), resp.Header.Get("Content-Range"))
	assert.Equal(t, string(data[1000:2000]), read(resp))

	resp = do(http.MethodGet, url, nil, "Range", "bytes=-10")
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, string(data[len(data)-10:]), read(resp))

	resp = do(http.MethodGet, url, nil, "Range", "bytes=999999999-")
	assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)

	resp = do(http.MethodHead, url, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int64(len(data)), resp.ContentLength)
	assert.Empty(t, read(resp))
	lastMod := resp.Header.Get("Last-Modified")
	assert.NotEmpty(t, lastMod)
	resp = do(http.MethodGet, url, nil, "If-Modified-Since", lastMod)
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)

	// Cloud Controller's multipart upload, with another field first.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("droplet_hash", "abc"))
	fw, err := mw.CreateFormFile("upload[droplet]", "droplet.tgz")
	require.NoError(t, err)
	_, err = fw.Write([]byte("uploaded droplet"))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	resp = do(http.MethodPost, srv.URL+"/blobs/droplets/posted", bytes.NewReader(form.Bytes()), "Content-Type", mw.FormDataContentType())
	assert.Equal(t, http.StatusCreated, resp.StatusCode, read(resp))
	resp = do(http.MethodGet, srv.URL+"/blobs/droplets/posted", nil)
	assert.Equal(t, "uploaded droplet", read(resp))

	// Upload, the client of that form, streams.
	big, _ := blob(32, 600_000)
	require.NoError(t, droplet.Upload(t.Context(), srv.Client(), srv.URL+"/blobs/droplets/uploaded", bytes.NewReader(big)))
	resp = do(http.MethodGet, srv.URL+"/blobs/droplets/uploaded", nil)
	assert.Equal(t, string(big), read(resp))

	// Errors.
	var noField bytes.Buffer
	mw = multipart.NewWriter(&noField)
	require.NoError(t, mw.WriteField("other", "x"))
	require.NoError(t, mw.Close())
	resp = do(http.MethodPost, url, bytes.NewReader(noField.Bytes()), "Content-Type", mw.FormDataContentType())
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp = do(http.MethodPost, url, strings.NewReader("x"), "Content-Type", "text/plain")
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	resp = do(http.MethodPut, url, bytes.NewReader(make([]byte, 2<<20)))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	err = droplet.Upload(t.Context(), srv.Client(), url, bytes.NewReader(make([]byte, 2<<20)))
	var se *droplet.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusRequestEntityTooLarge, se.StatusCode)
	resp = do(http.MethodGet, srv.URL+"/blobs/droplets/missing", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = do(http.MethodGet, srv.URL+"/blobs/.tmp/x", nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp = do(http.MethodPatch, url, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Allow"), "PUT")

	// The blob survived the failed uploads.
	resp = do(http.MethodGet, url, nil)
	assert.Equal(t, string(data), read(resp))

	resp = do(http.MethodDelete, url, nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp = do(http.MethodDelete, url, nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp = do(http.MethodGet, url, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestUploadReaderError(t *testing.T) {
	srv := droplettest.NewServer(t)
	err := droplet.Upload(t.Context(), srv.Client(), srv.URL("droplets/x"), &errReader{r: strings.NewReader("partial"), err: assert.AnError})
	assert.ErrorIs(t, err, assert.AnError)
	_, err = srv.Store.Head(t.Context(), "droplets/x")
	assert.ErrorIs(t, err, droplet.ErrNotFound, "a failed upload stores nothing")
}
