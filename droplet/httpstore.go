package droplet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// UploadField is the multipart form field that carries the file in
// Cloud Controller's upload URIs (upload[droplet]), used by Upload and
// accepted by Handler.
const UploadField = "upload[droplet]"

// HTTPStore is a BlobStore on a remote Handler (or any server that maps
// PUT, GET, HEAD and DELETE of <base>/<key> the same way). It holds no
// state besides its configuration and is safe for concurrent use.
// Requests are not retried.
type HTTPStore struct {
	base   *url.URL
	client *http.Client
}

// NewHTTPStore returns an HTTPStore for the blobs below baseURL (http or
// https; a key "a/b" is at baseURL + "/a/b"). client nil means
// http.DefaultClient. Credentials in baseURL are sent as basic auth.
func NewHTTPStore(baseURL string, client *http.Client) (*HTTPStore, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: blob store URL %q", ErrInvalid, redact(baseURL))
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTPStore{base: u, client: client}, nil
}

// URL returns the URL of the blob under key, to hand to a Registry's
// Download, say. It does not check key.
func (s *HTTPStore) URL(key string) string {
	u := *s.base
	u.Path += "/" + key
	return u.String()
}

// do sends a request for key and returns the response when its status is
// a success; otherwise it closes the body and returns a *StatusError.
func (s *HTTPStore) do(ctx context.Context, method, key string, body io.Reader) (*http.Response, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL(key), nil)
	if err != nil {
		return nil, fmt.Errorf("droplet: %s %s: %w", method, key, err)
	}
	if body != nil {
		// Not closed by the client: the caller's reader stays open.
		req.Body, req.ContentLength = io.NopCloser(body), sizeOf(body)
		if req.ContentLength == 0 {
			req.Body = http.NoBody
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("droplet: %s %s: %w", method, redact(req.URL.String()), unwrapURLError(err))
	}
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, statusError(req, resp)
	}
	return resp, nil
}

// sizeOf returns the size of what is left to read in r when r knows it
// (a file, a bytes or strings reader), or -1.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return fi.Size() - off
	}
	return -1
}

// Put implements BlobStore with a PUT request.
func (s *HTTPStore) Put(ctx context.Context, key string, r io.Reader) error {
	resp, err := s.do(ctx, http.MethodPut, key, r)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Get implements BlobStore with a GET request; the reader is the
// response body.
func (s *HTTPStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := s.do(ctx, http.MethodGet, key, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Head implements BlobStore with a HEAD request: Size comes from
// Content-Length, ModTime from Last-Modified (zero when absent).
func (s *HTTPStore) Head(ctx context.Context, key string) (BlobInfo, error) {
	resp, err := s.do(ctx, http.MethodHead, key, nil)
	if err != nil {
		return BlobInfo{}, err
	}
	resp.Body.Close()
	info := BlobInfo{Key: key, Size: resp.ContentLength}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = t
	}
	return info, nil
}

// Delete implements BlobStore with a DELETE request; a 404 is success.
func (s *HTTPStore) Delete(ctx context.Context, key string) error {
	resp, err := s.do(ctx, http.MethodDelete, key, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Upload sends the content of r to uri as Cloud Controller's stagers
// uploaded droplets and buildpack caches: a multipart/form-data POST
// whose field upload[droplet] holds the file (named droplet.tgz). The
// body is streamed, never held in memory. client nil means
// http.DefaultClient. A status other than 2xx returns a *StatusError.
// Upload does not close r.
func Upload(ctx context.Context, client *http.Client, uri string, r io.Reader) error {
	if client == nil {
		client = http.DefaultClient
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, pr)
	if err != nil {
		return fmt.Errorf("%w: upload: %w", ErrInvalid, unwrapURLError(err))
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())

	written := make(chan error, 1)
	go func() {
		err := func() error {
			part, err := mw.CreateFormFile(UploadField, "droplet.tgz")
			if err != nil {
				return err
			}
			if _, err := io.CopyBuffer(part, &ctxReader{ctx: ctx, r: r}, make([]byte, 256<<10)); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err) // nil closes with io.EOF
		written <- err
	}()

	resp, err := client.Do(req)
	pr.CloseWithError(errors.New("droplet: upload finished")) // unblocks the writer if the request ended early
	werr := <-written
	if err != nil {
		if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
			err = werr // the reader's error caused the failure
		}
		return fmt.Errorf("droplet: upload to %s: %w", redact(uri), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return statusError(req, resp)
	}
	if werr != nil {
		return fmt.Errorf("droplet: upload to %s: %w", redact(uri), werr)
	}
	return nil
}
