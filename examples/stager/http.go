package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"time"
)

// logName is the file name of a task's log: a hash, so that task ids from
// the wire never become paths.
func logName(taskID string) string {
	h := sha256.Sum256([]byte(taskID))
	return hex.EncodeToString(h[:16]) + ".log"
}

// logURL is the streaming log URL of the setup reply.
func (s *Service) logURL(taskID string) string {
	return s.URL() + "/staging_tasks/" + url.PathEscape(taskID) + "/log"
}

// handler serves GET /staging_tasks/{id}/log (streamed until the staging
// ends while it runs) and GET /metrics (JSON).
func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /staging_tasks/{id}/log", s.serveLog)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Metrics())
	})
	return mux
}

func (s *Service) serveLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f, err := os.Open(s.logDir + "/" + logName(id))
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "cannot open log", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	s.mu.Lock()
	t := s.running[id]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if t == nil {
		_, _ = io.Copy(w, f)
		return
	}
	// Follow the file until the staging ends, as dea_ng's tail.
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-t.done:
			_, _ = io.Copy(w, f)
			return
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// readTail returns up to the last n bytes of the file at path.
func readTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}
