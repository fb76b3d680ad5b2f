package droplet

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// Handler serves a DirStore over HTTP, for the controller (app packages,
// droplets, buildpack caches) and for HTTPStore. The request path, less
// a leading "/", is the blob key; mount the handler under a prefix with
// http.StripPrefix. Methods:
//
//   - GET and HEAD send the blob, with Range, If-Modified-Since and
//     If-None-Match handled by http.ServeContent (206 for a range), or
//     404.
//   - PUT stores the request body under the key: 201 Created.
//   - POST stores the file of a multipart/form-data body's upload[droplet]
//     field, as Cloud Controller's upload URIs took it from stagers (see
//     Upload): 201 Created, or 400 when the field is missing. The part is
//     streamed to disk, never held in memory.
//   - DELETE removes the blob: 204 No Content, also when there was none.
//
// Other methods get 405; invalid keys 400; bodies over MaxUploadSize 413.
// Handler does no authentication: wrap it (Cloud Controller used basic
// auth on these URIs). Its fields must not change once it serves.
type Handler struct {
	// Store holds the blobs. Required.
	Store *DirStore
	// MaxUploadSize caps the body of a PUT or POST, in bytes; 0 means
	// DefaultMaxDropletSize, negative no limit.
	MaxUploadSize int64
	// Logger receives one line per failed request; nil logs nothing.
	Logger *slog.Logger
}

// NewHandler returns a Handler serving store with the default limits.
func NewHandler(store *DirStore) *Handler { return &Handler{Store: store} }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/")
	if err := ValidKey(key); err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		f, info, err := h.Store.Open(key)
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", info.ModTime, f)
	case http.MethodPut:
		body := h.limit(w, r)
		if err := h.Store.Put(r.Context(), key, body); err != nil {
			h.storeErr(w, r, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case http.MethodPost:
		h.post(w, r, key)
	case http.MethodDelete:
		if err := h.Store.Delete(r.Context(), key); err != nil {
			h.storeErr(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
		h.fail(w, r, http.StatusMethodNotAllowed, errors.New("method not allowed"))
	}
}

// post stores the upload[droplet] part of a multipart form.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, key string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		h.fail(w, r, http.StatusUnsupportedMediaType, errors.New("POST needs a multipart/form-data body"))
		return
	}
	r.Body = h.limit(w, r)
	mr, err := r.MultipartReader()
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err)
		return
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			h.fail(w, r, http.StatusBadRequest, errors.New("no "+UploadField+" field in the form"))
			return
		}
		if err != nil {
			h.bodyErr(w, r, err)
			return
		}
		if part.FormName() != UploadField {
			part.Close()
			continue
		}
		err = h.Store.Put(r.Context(), key, part)
		part.Close()
		if err != nil {
			h.storeErr(w, r, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
		return
	}
}

// limit caps the request body at MaxUploadSize.
func (h *Handler) limit(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	max := h.MaxUploadSize
	if max == 0 {
		max = DefaultMaxDropletSize
	}
	if max < 0 {
		return r.Body
	}
	return http.MaxBytesReader(w, r.Body, max)
}

// storeErr answers an error of the store.
func (h *Handler) storeErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		h.fail(w, r, http.StatusNotFound, err)
	case errors.Is(err, ErrInvalid):
		h.fail(w, r, http.StatusBadRequest, err)
	default:
		h.bodyErr(w, r, err)
	}
}

// bodyErr answers an error met reading the request or writing the blob.
func (h *Handler) bodyErr(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		h.fail(w, r, http.StatusRequestEntityTooLarge, err)
		return
	}
	h.fail(w, r, http.StatusInternalServerError, err)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if h.Logger != nil {
		h.Logger.Warn("blob request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	if code >= 500 {
		http.Error(w, http.StatusText(code), code) // the details stay in the log
		return
	}
	http.Error(w, http.StatusText(code)+": "+strings.TrimPrefix(err.Error(), "droplet: "), code)
}
