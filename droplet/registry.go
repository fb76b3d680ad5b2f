package droplet

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// Names in a Registry's base directory.
const (
	dropletsDir = "droplets"
	tmpDir      = "tmp"
	lockFile    = "registry.lock"
	// FileName is the name of a droplet's file in its directory:
	// <base>/droplets/<sha1>/droplet.tgz, whatever its format.
	FileName = "droplet.tgz"
	metaFile = "droplet.json"
)

// Info describes a droplet in a Registry. It is a snapshot: a copy that
// later changes to the Registry do not update.
type Info struct {
	// SHA1 is the droplet's key: the lowercase hex SHA-1 of its bytes.
	SHA1 string
	// SHA256 is the lowercase hex SHA-256 of its bytes.
	SHA256 string
	// Size is the size of the droplet file in bytes.
	Size int64
	// Path is the droplet file: <base>/droplets/<sha1>/droplet.tgz. It is
	// read-only by contract: a droplet changed in place no longer passes
	// the size and time check and is treated as missing until verified.
	Path string
	// Users are the users holding references to the droplet (see
	// Registry.Acquire), sorted, each once. Empty when unused.
	Users []string
}

// Usage is the disk space a Registry's droplets take.
type Usage struct {
	Droplets int   // droplets in the registry
	Bytes    int64 // sum of their file sizes
}

// Registry is the set of droplets on local disk, keyed by SHA-1, as a
// DEA keeps it: droplets arrive by Download (each transferred at most
// once, however many callers ask at the same time), by Put or LocalCopy
// (a droplet staged on this host), are referenced by their users
// (instances, staging tasks), and leave by Destroy or Reap.
//
// Layout of the base directory:
//
//	droplets/<sha1>/droplet.tgz   the droplet, mode 0644
//	droplets/<sha1>/droplet.json  its SHA-1, SHA-256, size and time
//	tmp/                          transfers in progress, droplets being removed
//	registry.lock                 locked while a Registry has it open
//
// A Registry is safe for concurrent use. Its methods that take a
// context.Context may block on I/O; the others only stat files.
type Registry struct {
	base string
	opts options
	log  *slog.Logger
	lock *flock.Flock

	ctx    context.Context // cancelled by Close: stops downloads and the reaper
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	droplets map[string]*entry
	flights  map[string]*flight
}

// entry is a droplet known to the Registry.
type entry struct {
	sha1, sha256 string
	size         int64
	modTime      time.Time // of the file when last stored or verified
	stale        bool      // the file changed since: needs Verify
	users        map[string]int
	idleSince    time.Time // when users last became empty
}

// meta is the content of droplet.json.
type meta struct {
	SHA1    string `json:"sha1"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

// OpenRegistry opens the registry in base, creating the directory if
// needed, and loads the droplets already there. A droplet whose recorded
// size and modification time match its file is trusted without being
// read; one that does not match, or has no record, is kept but treated
// as missing until Verify (or a Download of it) has re-hashed it. Files
// of transfers and removals interrupted by a crash are removed.
//
// Only one Registry may have base open at a time, in any process: a
// second fails with ErrInUse until the first is closed. Close releases it.
func OpenRegistry(base string, opts ...Option) (_ *Registry, retErr error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.attempts < 1:
		return nil, fmt.Errorf("%w: %d download attempts", ErrInvalid, o.attempts)
	case o.inactivity <= 0:
		return nil, fmt.Errorf("%w: inactivity timeout %v", ErrInvalid, o.inactivity)
	case o.minDelay < 0 || o.maxDelay < o.minDelay:
		return nil, fmt.Errorf("%w: retry delays %v..%v", ErrInvalid, o.minDelay, o.maxDelay)
	case o.reapInterval < 0 || o.reapGrace < 0:
		return nil, fmt.Errorf("%w: negative reap interval or grace", ErrInvalid)
	case o.client == nil:
		o.client = http.DefaultClient
	}
	if o.maxSize == 0 {
		o.maxSize = DefaultMaxDropletSize
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("registry", base)

	for _, d := range []string{dropletsDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return nil, fmt.Errorf("droplet: open registry: %w", err)
		}
	}
	lock := flock.New(filepath.Join(base, lockFile))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("droplet: open registry: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: registry %s is open elsewhere", ErrInUse, base)
	}
	defer func() {
		if retErr != nil {
			_ = lock.Close()
		}
	}()

	r := &Registry{
		base:     base,
		opts:     o,
		log:      log,
		lock:     lock,
		droplets: make(map[string]*entry),
		flights:  make(map[string]*flight),
	}
	if err := r.cleanTmp(); err != nil {
		return nil, err
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if o.reapInterval > 0 {
		r.wg.Add(1)
		go r.reapLoop()
	}
	return r, nil
}

// cleanTmp removes what interrupted transfers and removals left.
func (r *Registry) cleanTmp() error {
	dir := filepath.Join(r.base, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("droplet: open registry: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("droplet: open registry: %w", err)
		}
		r.log.Debug("removed leftover", "name", e.Name())
	}
	return nil
}

// load reads the droplets directory.
func (r *Registry) load() error {
	dir := filepath.Join(r.base, dropletsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("droplet: open registry: %w", err)
	}
	now := time.Now()
	for _, de := range ents {
		sha := de.Name()
		if !de.IsDir() || !validSHA1(sha) {
			r.log.Warn("ignoring unknown file in droplets directory", "name", sha)
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, sha, FileName))
		if errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("removing droplet directory without a droplet", "sha1", sha)
			if err := os.RemoveAll(filepath.Join(dir, sha)); err != nil {
				return fmt.Errorf("droplet: open registry: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("droplet: open registry: %w", err)
		}
		e := &entry{sha1: sha, size: fi.Size(), modTime: fi.ModTime(), users: map[string]int{}, idleSince: now}
		m, err := readMeta(filepath.Join(dir, sha, metaFile))
		if err != nil || m.SHA1 != sha || m.Size != fi.Size() || m.ModTime != fi.ModTime().UnixNano() {
			e.stale = true
			r.log.Warn("droplet changed on disk or lacks its record; it needs Verify", "sha1", sha, "err", err)
		} else {
			e.sha256 = m.SHA256
		}
		r.droplets[sha] = e
	}
	r.log.Debug("opened", "droplets", len(r.droplets))
	return nil
}

func readMeta(path string) (meta, error) {
	var m meta
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// writeMeta writes dir/droplet.json atomically.
func writeMeta(dir string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, metaFile))
}

// Close stops the reaper and the downloads in progress (their callers get
// ErrClosed, and their partial files are removed), waits for them, and
// releases the base directory. Droplets on disk stay for the next
// OpenRegistry. Calls of Put, LocalCopy and Verify in progress are not
// waited for: they fail with ErrClosed and remove their own files. Close
// may be called more than once; later calls return nil.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	if err := r.lock.Close(); err != nil {
		return fmt.Errorf("droplet: close registry: %w", err)
	}
	return nil
}

// Base returns the registry's base directory.
func (r *Registry) Base() string { return r.base }

// Path returns where the droplet sha1 is or would be stored, or "" when
// sha1 is not 40 hex digits. It does not say whether the droplet is
// there; see Has.
func (r *Registry) Path(sha1 string) string {
	sha1, err := normalizeSHA1(sha1)
	if err != nil {
		return ""
	}
	return filepath.Join(r.base, dropletsDir, sha1, FileName)
}

// Has reports whether the droplet sha1 is in the registry and its file
// still has the size and time it was stored with. It does not read the
// file; Verify does.
func (r *Registry) Has(sha1 string) bool {
	_, err := r.Get(sha1)
	return err == nil
}

// Get returns the droplet sha1. It fails with ErrNotFound when the
// registry does not have it, or when its file is gone or no longer has
// the size and modification time it was stored with (then the droplet
// stays known, but only Verify or Download make it usable again), and
// with ErrInvalid when sha1 is not 40 hex digits. It costs one stat.
func (r *Registry) Get(sha1 string) (Info, error) {
	sha1, err := normalizeSHA1(sha1)
	if err != nil {
		return Info{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Info{}, ErrClosed
	}
	e, err := r.check(sha1)
	if err != nil {
		return Info{}, err
	}
	return r.info(e), nil
}

// check returns the usable entry sha1, checking its file's size and time.
// The caller holds r.mu.
func (r *Registry) check(sha1 string) (*entry, error) {
	e := r.droplets[sha1]
	if e == nil {
		return nil, fmt.Errorf("%w: droplet %s", ErrNotFound, sha1)
	}
	if e.stale {
		return nil, fmt.Errorf("%w: droplet %s changed on disk since it was stored; Verify it", ErrNotFound, sha1)
	}
	fi, err := os.Stat(r.Path(sha1))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.log.Warn("droplet file disappeared", "sha1", sha1)
		if len(e.users) == 0 {
			delete(r.droplets, sha1)
			_ = os.RemoveAll(filepath.Dir(r.Path(sha1)))
		} else {
			e.stale = true
		}
		return nil, fmt.Errorf("%w: droplet %s: file disappeared", ErrNotFound, sha1)
	case err != nil:
		return nil, fmt.Errorf("droplet: %s: %w", sha1, err)
	case fi.Size() != e.size || !fi.ModTime().Equal(e.modTime):
		r.log.Warn("droplet file changed", "sha1", sha1, "size", fi.Size(), "recorded_size", e.size)
		e.stale = true
		return nil, fmt.Errorf("%w: droplet %s changed on disk since it was stored; Verify it", ErrNotFound, sha1)
	}
	return e, nil
}

// info returns the Info of e. The caller holds r.mu.
func (r *Registry) info(e *entry) Info {
	return Info{
		SHA1:   e.sha1,
		SHA256: e.sha256,
		Size:   e.size,
		Path:   r.Path(e.sha1),
		Users:  slices.Sorted(maps.Keys(e.users)),
	}
}

// List returns the droplets in the registry, sorted by SHA-1, including
// those awaiting Verify. It reads no file.
func (r *Registry) List() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.droplets))
	for _, e := range r.droplets {
		out = append(out, r.info(e))
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.SHA1, b.SHA1) })
	return out
}

// Usage returns how many droplets the registry holds and the bytes of
// their files, from what it recorded (no file is read). Transfers in
// progress are not counted.
func (r *Registry) Usage() Usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var u Usage
	for _, e := range r.droplets {
		u.Droplets++
		u.Bytes += e.size
	}
	return u
}

// Ref is a user's reference to a droplet, from Registry.Acquire. While a
// droplet has references, Destroy refuses to remove it and Reap leaves
// it. A Ref is safe for concurrent use.
type Ref struct {
	r    *Registry
	sha1 string
	user string
	once sync.Once
}

// SHA1 returns the droplet's SHA-1.
func (ref *Ref) SHA1() string { return ref.sha1 }

// User returns the user the reference was acquired for.
func (ref *Ref) User() string { return ref.user }

// Path returns the droplet's file.
func (ref *Ref) Path() string { return ref.r.Path(ref.sha1) }

// Release drops the reference. Calls after the first do nothing.
func (ref *Ref) Release() {
	ref.once.Do(func() {
		r := ref.r
		r.mu.Lock()
		defer r.mu.Unlock()
		e := r.droplets[ref.sha1]
		if e == nil {
			return
		}
		if e.users[ref.user]--; e.users[ref.user] <= 0 {
			delete(e.users, ref.user)
		}
		if len(e.users) == 0 {
			e.idleSince = time.Now()
		}
	})
}

// Acquire records that user (an instance id, a staging task id: any
// non-empty name) uses the droplet sha1, and returns the reference to
// release when done. A user may hold several references to the same
// droplet; each counts until released. It fails like Get when the
// droplet is not usable.
func (r *Registry) Acquire(sha1, user string) (*Ref, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", ErrInvalid)
	}
	sha1, err := normalizeSHA1(sha1)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	e, err := r.check(sha1)
	if err != nil {
		return nil, err
	}
	e.users[user]++
	return &Ref{r: r, sha1: sha1, user: user}, nil
}

// Destroy removes the droplet sha1: it first renames the droplet's
// directory away, so that no new user can pick it up, then deletes it.
// It fails with ErrInUse, removing nothing, when the droplet has users,
// and succeeds when the registry does not have it.
func (r *Registry) Destroy(ctx context.Context, sha1 string) error {
	sha1, err := normalizeSHA1(sha1)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	e := r.droplets[sha1]
	if e == nil {
		r.mu.Unlock()
		return nil
	}
	if len(e.users) > 0 {
		users := slices.Sorted(maps.Keys(e.users))
		r.mu.Unlock()
		return fmt.Errorf("%w: droplet %s is used by %s", ErrInUse, sha1, strings.Join(users, ", "))
	}
	tomb, err := r.bury(sha1)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.removeTomb(ctx, tomb)
}

// bury renames the droplet's directory into tmp and forgets the droplet.
// The caller holds r.mu.
func (r *Registry) bury(sha1 string) (string, error) {
	tomb, err := os.MkdirTemp(filepath.Join(r.base, tmpDir), sha1+".deleted-")
	if err != nil {
		return "", fmt.Errorf("droplet: destroy %s: %w", sha1, err)
	}
	dst := filepath.Join(tomb, sha1)
	if err := os.Rename(filepath.Dir(r.Path(sha1)), dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(tomb)
		return "", fmt.Errorf("droplet: destroy %s: %w", sha1, err)
	}
	delete(r.droplets, sha1)
	r.log.Debug("destroyed", "sha1", sha1)
	return tomb, nil
}

// removeTomb deletes a directory made by bury. The removal is not
// interrupted by ctx (a half-removed directory helps nobody), but an
// already cancelled ctx is reported after it.
func (r *Registry) removeTomb(ctx context.Context, tomb string) error {
	if err := os.RemoveAll(tomb); err != nil {
		return fmt.Errorf("droplet: remove %s: %w", tomb, err)
	}
	return ctx.Err()
}

// Reap removes the droplets that have had no users for at least the reap
// grace (WithReapGrace) and are not being downloaded, and returns their
// SHA-1s, sorted. It is what WithReapInterval runs periodically.
func (r *Registry) Reap(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	now := time.Now()
	var reaped, tombs []string
	var errs []error
	for sha1, e := range r.droplets {
		if len(e.users) > 0 || now.Sub(e.idleSince) < r.opts.reapGrace || r.flights[sha1] != nil {
			continue
		}
		tomb, err := r.bury(sha1)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reaped = append(reaped, sha1)
		tombs = append(tombs, tomb)
	}
	r.mu.Unlock()
	for _, t := range tombs {
		if err := os.RemoveAll(t); err != nil {
			errs = append(errs, fmt.Errorf("droplet: reap: %w", err))
		}
	}
	slices.Sort(reaped)
	if len(reaped) > 0 {
		r.log.Info("reaped unused droplets", "count", len(reaped))
	}
	if err := errors.Join(errs...); err != nil {
		return reaped, err
	}
	return reaped, ctx.Err()
}

func (r *Registry) reapLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.reapInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			if _, err := r.Reap(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("reaping failed", "err", err)
			}
		}
	}
}

// Verify re-reads the droplet sha1 and checks its SHA-1: the full check
// that Get and Has leave out. On success it records the file's current
// size and time, so a droplet that awaited verification (changed on disk,
// or found without its record at OpenRegistry) is usable again. On a
// mismatch it returns a *HashMismatchError and removes the droplet, or,
// when it has users, keeps it unusable until they release it. It fails
// with ErrNotFound when the registry does not know the droplet.
func (r *Registry) Verify(ctx context.Context, sha1 string) (Info, error) {
	sha1, err := normalizeSHA1(sha1)
	if err != nil {
		return Info{}, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Info{}, ErrClosed
	}
	e := r.droplets[sha1]
	r.mu.Unlock()
	if e == nil {
		return Info{}, fmt.Errorf("%w: droplet %s", ErrNotFound, sha1)
	}

	path := r.Path(sha1)
	d, fi, err := hashFile(ctx, path)
	if err != nil {
		return Info{}, fmt.Errorf("droplet: verify %s: %w", sha1, err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.droplets[sha1] != e {
		return Info{}, fmt.Errorf("%w: droplet %s was removed while verified", ErrNotFound, sha1)
	}
	if d.SHA1 != sha1 {
		mismatch := &HashMismatchError{Expected: sha1, Actual: d.SHA1, Source: path}
		if len(e.users) > 0 {
			e.stale = true
			return Info{}, mismatch
		}
		tomb, err := r.bury(sha1)
		if err == nil {
			err = os.RemoveAll(tomb)
		}
		return Info{}, errors.Join(mismatch, err)
	}
	m := meta{SHA1: sha1, SHA256: d.SHA256, Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	if err := writeMeta(filepath.Dir(path), m); err != nil {
		return Info{}, fmt.Errorf("droplet: verify %s: %w", sha1, err)
	}
	e.sha256, e.size, e.modTime, e.stale = d.SHA256, fi.Size(), fi.ModTime(), false
	return r.info(e), nil
}

// hashFile returns the digests of the file at path and its stat from
// before it was read.
func hashFile(ctx context.Context, path string) (Digest, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Digest{}, nil, err
	}
	h := newHashWriter(io.Discard)
	if _, err := io.CopyBuffer(h, &ctxReader{ctx: ctx, r: f}, make([]byte, 256<<10)); err != nil {
		return Digest{}, nil, err
	}
	return h.digest(), fi, nil
}

// Put stores the droplet read from src, computing its digests as it
// copies, and returns it. When sha1 is not empty, the droplet must have
// that SHA-1 (else a *HashMismatchError, and nothing is stored), and if
// the registry already has it, src is not read at all. When sha1 is
// empty it is computed. The droplet appears in the registry whole or not
// at all; a droplet over the registry's maximum size fails with
// ErrLimitExceeded. Put does not close src.
func (r *Registry) Put(ctx context.Context, sha1 string, src io.Reader) (Info, error) {
	if sha1 != "" {
		var err error
		if sha1, err = normalizeSHA1(sha1); err != nil {
			return Info{}, err
		}
		if info, err := r.Get(sha1); err == nil {
			return info, nil
		}
	}
	return r.store(ctx, sha1, "", func(ctx context.Context, s *staged) error {
		return s.copyFrom(ctx, src, r.opts.maxSize)
	})
}

// LocalCopy imports the droplet file at path, as a stager on this host
// produced it, so that starting it here needs no download (dea_ng's
// local_copy). It copies the file (the caller keeps and may remove its
// own) and is Put otherwise: sha1 is checked when given, computed when
// empty, and nothing is copied when the registry already has it.
func (r *Registry) LocalCopy(ctx context.Context, sha1, path string) (Info, error) {
	if sha1 != "" {
		var err error
		if sha1, err = normalizeSHA1(sha1); err != nil {
			return Info{}, err
		}
		if info, err := r.Get(sha1); err == nil {
			return info, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("droplet: local copy: %w", err)
	}
	defer f.Close()
	return r.store(ctx, sha1, path, func(ctx context.Context, s *staged) error {
		return s.copyFrom(ctx, f, r.opts.maxSize)
	})
}

// staged is a droplet being written into tmp before it joins the
// registry.
type staged struct {
	dir  string   // private directory in tmp
	file *os.File // dir/droplet.tgz
	hash *hashWriter
}

// copyFrom appends src to the staged file, at most max bytes in all
// (negative: no limit). An error reading src (ctx's included) is a
// *readError; writing errors and ErrLimitExceeded are not.
func (s *staged) copyFrom(ctx context.Context, src io.Reader, max int64) error {
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return &readError{err}
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if max >= 0 && s.hash.n+int64(n) > max {
				return fmt.Errorf("%w: droplet larger than %d bytes", ErrLimitExceeded, max)
			}
			if _, err := s.hash.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return &readError{rerr}
		}
	}
}

// reset empties the staged file, to start a transfer over.
func (s *staged) reset() error {
	if err := s.file.Truncate(0); err != nil {
		return err
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	s.hash = newHashWriter(s.file)
	return nil
}

// store writes a droplet with fill into a private directory in tmp,
// checks its SHA-1 against want (when not empty), and moves it into the
// registry. source names where the bytes come from, for errors. Nothing
// is left in tmp on any path.
func (r *Registry) store(ctx context.Context, want, source string, fill func(context.Context, *staged) error) (_ Info, retErr error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return Info{}, ErrClosed
	}
	prefix := want
	if prefix == "" {
		prefix = "put"
	}
	dir, err := os.MkdirTemp(filepath.Join(r.base, tmpDir), prefix+".")
	if err != nil {
		return Info{}, fmt.Errorf("droplet: store: %w", err)
	}
	defer func() {
		if dir != "" {
			if err := os.RemoveAll(dir); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("droplet: store: cleaning up: %w", err))
			}
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return Info{}, fmt.Errorf("droplet: store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Info{}, fmt.Errorf("droplet: store: %w", err)
	}
	s := &staged{dir: dir, file: f, hash: newHashWriter(f)}
	err = fill(ctx, s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "droplet: ") {
			err = fmt.Errorf("droplet: store: %w", err)
		}
		return Info{}, err
	}
	d := s.hash.digest()
	if want != "" && d.SHA1 != want {
		return Info{}, &HashMismatchError{Expected: want, Actual: d.SHA1, Source: source}
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		return Info{}, fmt.Errorf("droplet: store: %w", err)
	}
	m := meta{SHA1: d.SHA1, SHA256: d.SHA256, Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	if err := writeMeta(dir, m); err != nil {
		return Info{}, fmt.Errorf("droplet: store: %w", err)
	}
	info, moved, err := r.commit(dir, m, fi.ModTime())
	if moved {
		dir = ""
	}
	return info, err
}

// commit moves the staged directory into the registry, unless the
// registry got the same droplet meanwhile. It reports whether dir was
// moved.
func (r *Registry) commit(dir string, m meta, modTime time.Time) (Info, bool, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Info{}, false, ErrClosed
	}
	old := r.droplets[m.SHA1]
	if old != nil && !old.stale {
		info := r.info(old)
		r.mu.Unlock()
		return info, false, nil
	}
	final := filepath.Dir(r.Path(m.SHA1))
	var tomb string
	if _, err := os.Lstat(final); err == nil {
		// A stale droplet, or a directory load ignored: set it aside.
		t, err := os.MkdirTemp(filepath.Join(r.base, tmpDir), m.SHA1+".replaced-")
		if err != nil {
			r.mu.Unlock()
			return Info{}, false, fmt.Errorf("droplet: store: %w", err)
		}
		if err := os.Rename(final, filepath.Join(t, m.SHA1)); err != nil {
			r.mu.Unlock()
			_ = os.Remove(t)
			return Info{}, false, fmt.Errorf("droplet: store: %w", err)
		}
		tomb = t
	}
	if err := os.Rename(dir, final); err != nil {
		r.mu.Unlock()
		if tomb != "" {
			_ = os.RemoveAll(tomb)
		}
		return Info{}, false, fmt.Errorf("droplet: store: %w", err)
	}
	e := &entry{sha1: m.SHA1, sha256: m.SHA256, size: m.Size, modTime: modTime, users: map[string]int{}, idleSince: time.Now()}
	if old != nil {
		e.users = old.users // references survive a re-download
	}
	r.droplets[m.SHA1] = e
	info := r.info(e)
	r.mu.Unlock()
	r.log.Debug("stored", "sha1", m.SHA1, "size", m.Size)
	if tomb != "" {
		if err := os.RemoveAll(tomb); err != nil {
			return info, true, fmt.Errorf("droplet: store: removing the replaced droplet: %w", err)
		}
	}
	return info, true, nil
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// validSHA1 reports whether s is 40 lowercase hex digits.
func validSHA1(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// normalizeSHA1 lowercases s and checks that it is a SHA-1 in hex.
func normalizeSHA1(s string) (string, error) {
	l := strings.ToLower(s)
	if !validSHA1(l) {
		return "", fmt.Errorf("%w: %q is not a SHA-1 (40 hex digits)", ErrInvalid, s)
	}
	return l, nil
}
