package droplettest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/paaskit/paaskit/droplet"
)

// Server is a blob store served over HTTP by [droplet.Handler] on an
// httptest server, with counters of the requests it answered and faults
// it can be told to inject, for tests of downloads, retries and
// uploads. It is safe for concurrent use.
type Server struct {
	// Store is the store the server serves; tests may fill it directly.
	Store *droplet.DirStore

	srv *httptest.Server

	mu     sync.Mutex
	counts map[string]*Counts
	faults map[string][]fault
	holds  map[string]chan struct{}
}

// Counts are the requests a Server answered for one key.
type Counts struct {
	Gets      int   // GET requests, whatever their outcome
	Heads     int   // HEAD requests
	Puts      int   // PUT requests
	Posts     int   // POST requests
	Deletes   int   // DELETE requests
	Transfers int   // GET requests answered with 200 or 206: transfers started
	Faults    int   // requests answered by an injected fault
	BytesSent int64 // bytes of the blob sent by GET responses (200, 206)
}

type faultKind int

const (
	faultStatus faultKind = iota // answer with a status
	faultCut                     // send some bytes, then drop the connection
	faultStall                   // send some bytes, then send nothing more
)

type fault struct {
	kind   faultKind
	status int
	after  int64
}

// NewServer starts a Server whose store is in a temporary directory of
// t; both are removed when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatalf("droplettest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartServer starts a Server on a store in dir (created if needed), for
// programs without a testing.T (benchmarks). The caller calls Close; dir
// is the caller's to remove.
func StartServer(dir string) (*Server, error) {
	store, err := droplet.NewDirStore(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Store:  store,
		counts: make(map[string]*Counts),
		faults: make(map[string][]fault),
		holds:  make(map[string]chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s, nil
}

// Close stops the server, releasing any held request; it waits for the
// requests in progress.
func (s *Server) Close() {
	s.mu.Lock()
	for k, ch := range s.holds {
		close(ch)
		delete(s.holds, k)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// BaseURL returns the server's URL, the base for a droplet.HTTPStore.
func (s *Server) BaseURL() string { return s.srv.URL }

// URL returns the URL of the blob under key.
func (s *Server) URL(key string) string { return s.srv.URL + "/" + key }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Add stores data under key and returns its URL, failing t on error.
func (s *Server) Add(t testing.TB, key string, data []byte) string {
	t.Helper()
	if err := s.Store.Put(context.Background(), key, bytes.NewReader(data)); err != nil {
		t.Fatalf("droplettest: %v", err)
	}
	return s.URL(key)
}

// AddFile stores the file at path under key and returns its URL.
func (s *Server) AddFile(key, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("droplettest: %w", err)
	}
	defer f.Close()
	if err := s.Store.Put(context.Background(), key, f); err != nil {
		return "", err
	}
	return s.URL(key), nil
}

// Counts returns the counters of key.
func (s *Server) Counts(key string) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counts[key]; c != nil {
		return *c
	}
	return Counts{}
}

// Transfers returns how many GETs of key were answered with the blob's
// content (200 or 206).
func (s *Server) Transfers(key string) int { return s.Counts(key).Transfers }

// Fail makes the next n GETs of key answer status (e.g. 503) without
// touching the store.
func (s *Server) Fail(key string, status, n int) {
	s.addFault(key, fault{kind: faultStatus, status: status}, n)
}

// Cut makes the next n GETs of key send the first after bytes of the
// blob and then drop the connection, as a network failure would.
func (s *Server) Cut(key string, after int64, n int) {
	s.addFault(key, fault{kind: faultCut, after: after}, n)
}

// Stall makes the next n GETs of key send the first after bytes of the
// blob and then nothing more until the client gives up, to exercise
// inactivity timeouts.
func (s *Server) Stall(key string, after int64, n int) {
	s.addFault(key, fault{kind: faultStall, after: after}, n)
}

func (s *Server) addFault(key string, f fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[key] = append(s.faults[key], f)
	}
}

// Hold makes GETs of key wait, before anything is answered, until the
// returned release is called (or their request is cancelled, or the
// server closed). It lets a test start many downloads and check that
// they share one transfer. release may be called more than once.
func (s *Server) Hold(key string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.holds[key] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.holds[key] == ch {
				close(ch)
				delete(s.holds, key)
			}
			s.mu.Unlock()
		})
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	c := s.counts[key]
	if c == nil {
		c = &Counts{}
		s.counts[key] = c
	}
	switch r.Method {
	case http.MethodGet:
		c.Gets++
	case http.MethodHead:
		c.Heads++
	case http.MethodPut:
		c.Puts++
	case http.MethodPost:
		c.Posts++
	case http.MethodDelete:
		c.Deletes++
	}
	var f *fault
	hold := s.holds[key]
	if r.Method == http.MethodGet && len(s.faults[key]) > 0 {
		f = &s.faults[key][0]
		s.faults[key] = s.faults[key][1:]
		c.Faults++
	}
	s.mu.Unlock()

	if hold != nil && r.Method == http.MethodGet {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if f != nil && f.kind == faultStatus {
		http.Error(w, http.StatusText(f.status), f.status)
		return
	}
	cw := &countingWriter{ResponseWriter: w, s: s, c: c, fault: f, ctx: r.Context(), get: r.Method == http.MethodGet}
	(&droplet.Handler{Store: s.Store}).ServeHTTP(cw, r)
}

// countingWriter counts what a GET sends and applies cut and stall
// faults. Only the request's goroutine uses it.
type countingWriter struct {
	http.ResponseWriter
	s       *Server
	c       *Counts
	fault   *fault
	ctx     context.Context
	get     bool // the request is a GET
	started bool
	content bool // the response carries the blob
	sent    int64
}

func (cw *countingWriter) WriteHeader(code int) {
	if !cw.started {
		cw.started = true
		if cw.get && (code == http.StatusOK || code == http.StatusPartialContent) {
			cw.content = true
			cw.s.mu.Lock()
			cw.c.Transfers++
			cw.s.mu.Unlock()
		}
	}
	cw.ResponseWriter.WriteHeader(code)
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	if !cw.started {
		cw.WriteHeader(http.StatusOK)
	}
	if f := cw.fault; f != nil && cw.sent+int64(len(p)) > f.after {
		_, _ = cw.write(p[:max(0, f.after-cw.sent)])
		_ = http.NewResponseController(cw.ResponseWriter).Flush()
		if f.kind == faultStall {
			<-cw.ctx.Done()
		}
		panic(http.ErrAbortHandler) // drops the connection, quietly
	}
	return cw.write(p)
}

func (cw *countingWriter) write(p []byte) (int, error) {
	n, err := cw.ResponseWriter.Write(p)
	if cw.content {
		cw.sent += int64(n)
		cw.s.mu.Lock()
		cw.c.BytesSent += int64(n)
		cw.s.mu.Unlock()
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (cw *countingWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }
