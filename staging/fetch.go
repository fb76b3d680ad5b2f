package staging

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/internal/archive"
)

// open opens src for reading.
func (s *Stager) open(ctx context.Context, src Source) (io.ReadCloser, error) {
	if src.Key != "" {
		if s.opts.blobs == nil {
			return nil, fmt.Errorf("staging: key %q: no blob store (WithBlobStore)", src.Key)
		}
		return s.opts.blobs.Get(ctx, src.Key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.opts.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("GET %s: %s: %w", src.URL, resp.Status, droplet.ErrNotFound)
		}
		return nil, fmt.Errorf("GET %s: %s", src.URL, resp.Status)
	}
	return resp.Body, nil
}

// fetchToFile copies src into the file path and returns its size.
func (s *Stager) fetchToFile(ctx context.Context, src Source, path string) (int64, error) {
	rc, err := s.open(ctx, src)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// put stores the file at path to dst.
func (s *Stager) put(ctx context.Context, dst Source, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if dst.Key != "" {
		if s.opts.blobs == nil {
			return fmt.Errorf("staging: key %q: no blob store (WithBlobStore)", dst.Key)
		}
		return s.opts.blobs.Put(ctx, dst.Key, f)
	}
	return droplet.Upload(ctx, s.opts.client, dst.URL, f)
}

// shortHash names buildpack and cache directories: 16 hex digits of the
// SHA-256 of key (Diego uses xxhash64; the names are local to paaskit).
func shortHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

// restoreCache extracts the cache; any failure is a warning.
func (r *run) restoreCache(ctx context.Context) {
	if r.req.CacheSource.IsZero() {
		return
	}
	rc, err := r.s.open(ctx, r.req.CacheSource)
	if err != nil {
		if errors.Is(err, droplet.ErrNotFound) {
			r.log.step("No buildpack cache found")
		} else {
			r.log.warn("Warning: could not download the buildpack cache, staging without it: %v", err)
		}
		return
	}
	defer rc.Close()
	if _, err := archive.ExtractAuto(ctx, rc, r.cache, archive.Options{Limits: archive.Limits{MaxBytes: r.diskBytes()}}); err != nil {
		r.log.warn("Warning: the buildpack cache is corrupt, staging without it: %v", err)
		os.RemoveAll(r.cache)
		_ = os.MkdirAll(r.cache, 0o755)
		return
	}
	r.log.step("Restored buildpack cache")
	r.pruneCache()
}

// pruneCache keeps only final/ and the current supply buildpacks' caches,
// as Diego's cleanCacheDir.
func (r *run) pruneCache() {
	keep := map[string]bool{"final": true}
	for _, bp := range r.bps {
		keep[bp.hash] = true
	}
	entries, _ := os.ReadDir(r.cache)
	for _, e := range entries {
		if !keep[e.Name()] {
			os.RemoveAll(filepath.Join(r.cache, e.Name()))
		}
	}
}

// saveCache tars the cache and stores it.
func (r *run) saveCache(ctx context.Context) error {
	r.pruneCache()
	path := filepath.Join(r.ws, "cache.tgz")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	err = archive.Create(ctx, zw, r.cache, archive.CreateOptions{})
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return r.s.put(ctx, r.req.CacheDest, path)
}

// fetchBuildpack makes a zip or git buildpack available in dir.
func (r *run) fetchBuildpack(ctx context.Context, src BuildpackSource, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if src.Git != "" {
		git, err := exec.LookPath("git")
		if err != nil {
			return fmt.Errorf("git buildpacks need git on the host: %w", err)
		}
		u, branch, _ := strings.Cut(src.Git, "#")
		args := []string{"clone", "--depth", "1", "--recursive"}
		if branch != "" {
			args = append(args, "-b", branch)
		}
		args = append(args, "--", u, dir)
		cmd := exec.CommandContext(ctx, git, args...)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git clone %s: %w: %s", src.Git, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	zipPath := dir + ".zip"
	if _, err := r.s.fetchToFile(ctx, src.Zip, zipPath); err != nil {
		return err
	}
	defer os.Remove(zipPath)
	return Unzip(ctx, zipPath, dir, -1, -1, ZipLimits{})
}
