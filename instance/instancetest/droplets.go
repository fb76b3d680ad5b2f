package instancetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Droplets is a fake droplet source and store (instance.DropletStore)
// holding droplets in memory and "downloading" them to a directory. Its
// zero value is not usable; use NewDroplets.
type Droplets struct {
	dir string

	mu        sync.Mutex
	blobs     map[string][]byte
	local     map[string]bool
	downloads map[string]int
	fail      map[string]error
	delay     time.Duration
}

// NewDroplets returns a fake source that writes droplets below dir
// (which it creates).
func NewDroplets(dir string) *Droplets {
	return &Droplets{
		dir: dir, blobs: make(map[string][]byte), local: make(map[string]bool),
		downloads: make(map[string]int), fail: make(map[string]error),
	}
}

// Add makes a droplet (a gzip tarball, see NewDroplet) available for
// download and returns its SHA-1.
func (d *Droplets) Add(tgz []byte) string {
	sum := sha1.Sum(tgz)
	s := hex.EncodeToString(sum[:])
	d.mu.Lock()
	defer d.mu.Unlock()
	d.blobs[s] = tgz
	return s
}

// SetDelay makes every download take d (to show that concurrent starts
// share one).
func (d *Droplets) SetDelay(delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delay = delay
}

// Fail makes downloads of sha1 fail with err (nil: succeed again).
func (d *Droplets) Fail(sha1 string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.fail, sha1)
		return
	}
	d.fail[sha1] = err
}

// Downloads returns how many times sha1 was downloaded.
func (d *Droplets) Downloads(sha1 string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.downloads[sha1]
}

func (d *Droplets) path(sha1 string) string { return filepath.Join(d.dir, sha1, "droplet.tgz") }

// Fetch implements instance.DropletSource: a droplet already on disk is
// returned at once; otherwise it is "downloaded" (counted, delayed as
// SetDelay says). An unknown SHA-1 returns an error wrapping
// os.ErrNotExist.
func (d *Droplets) Fetch(ctx context.Context, sha1, uri string) (string, error) {
	d.mu.Lock()
	if d.local[sha1] {
		d.mu.Unlock()
		return d.path(sha1), nil
	}
	if err := d.fail[sha1]; err != nil {
		d.mu.Unlock()
		return "", err
	}
	blob, ok := d.blobs[sha1]
	delay := d.delay
	d.downloads[sha1]++
	d.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("instancetest: droplet %s: %w", sha1, os.ErrNotExist)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	p := d.path(sha1)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, blob, 0o644); err != nil {
		return "", err
	}
	d.mu.Lock()
	d.local[sha1] = true
	d.mu.Unlock()
	return p, nil
}

// SHA1s implements instance.DropletStore: the droplets on disk.
func (d *Droplets) SHA1s(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for s := range d.local {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

// Remove implements instance.DropletStore.
func (d *Droplets) Remove(_ context.Context, sha1 string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.local, sha1)
	return os.RemoveAll(filepath.Join(d.dir, sha1))
}

// NewDroplet builds a droplet: a gzip tarball of files (path → content,
// paths relative to the droplet's root, directories made as needed;
// files under a bin/ directory and *.sh are executable). Nothing is
// added: give staging_info.yml yourself, or use AppDroplet.
func NewDroplet(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	now := time.Unix(1700000000, 0)
	for _, n := range names {
		n = path.Clean(strings.TrimPrefix(n, "/"))
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: now}); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		body := files[n]
		mode := int64(0o644)
		clean := path.Clean(strings.TrimPrefix(n, "/"))
		if strings.Contains("/"+clean, "/bin/") || strings.HasSuffix(clean, ".sh") || clean == "startup" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: clean, Mode: mode, Size: int64(len(body)), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// AppDroplet builds a droplet as staging would for a tiny web app in
// python3 (needs python3 in the stack, as containertest's has): it
// answers GET / with "ok", GET /env with the process's environment as a
// JSON object, and GET /exit?code=N by exiting with N. Its
// staging_info.yml start command is "python3 server.py", and a
// .profile.d script exports PROFILE_SOURCED=yes. It prints "listening on
// PORT" and appends "started" to logs/app.log.
func AppDroplet() ([]byte, error) {
	return NewDroplet(map[string]string{
		"staging_info.yml":          `{"detected_buildpack":"python","start_command":"python3 server.py"}` + "\n",
		"app/server.py":             appServer,
		"app/.profile.d/paaskit.sh": "export PROFILE_SOURCED=yes\n",
		"logs/staging_task.log":     "-----> staged by instancetest\n",
		"tmp/.keep":                 "",
	})
}

const appServer = `import http.server, json, os, sys
from urllib.parse import urlparse, parse_qs

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/env":
            body = json.dumps(dict(os.environ)).encode()
        elif u.path == "/exit":
            os._exit(int(parse_qs(u.query).get("code", ["1"])[0]))
        else:
            body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

print("listening on", os.environ["PORT"], flush=True)
with open(os.path.join(os.environ["HOME"], "..", "logs", "app.log"), "a") as f:
    f.write("started\n")
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
`
