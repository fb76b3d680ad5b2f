package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Snapshot is the content of instances.json (dea_ng's
// <base_dir>/db/instances.json): the instances in STARTING, RUNNING,
// STOPPING, CRASHED and EVACUATING, with dea_ng's field names (see
// Attributes), written atomically on every change of interest. Tools
// that read a DEA's snapshot (the logging agent read warden_container_path
// and warden_job_id) read this one.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time Timestamp `json:"time"`
	// Instances are the saved instances, in no particular order.
	Instances []Attributes `json:"instances"`
	// StagingTasks are kept for the format's sake: staging tasks are
	// package staging's, and this package writes none.
	StagingTasks []json.RawMessage `json:"staging_tasks"`
}

// ReadSnapshot decodes a snapshot. Unknown fields are ignored, so
// snapshots written by dea_ng read too (but for warden_job_id, a number
// there and a string here).
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("instance: read snapshot: %w", err)
	}
	return decodeSnapshot(b)
}

// decodeSnapshot decodes the instances in parallel: the document is
// split into raw instances first, which is cheap, then each is decoded.
// It uses github.com/go-json-experiment/json (encoding/json v2, as
// package nats does), twice as fast as encoding/json at this.
func decodeSnapshot(b []byte) (*Snapshot, error) {
	var raw struct {
		Time         Timestamp         `json:"time"`
		Instances    []jsontext.Value  `json:"instances"`
		StagingTasks []json.RawMessage `json:"staging_tasks"`
	}
	if err := jsonv2.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("instance: read snapshot: %w", err)
	}
	s := &Snapshot{Time: raw.Time, StagingTasks: raw.StagingTasks}
	if raw.Instances == nil {
		return s, nil
	}
	s.Instances = make([]Attributes, len(raw.Instances))
	n := len(raw.Instances)
	parts := max(min(runtime.GOMAXPROCS(0), n/256), 1)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			for i := p * n / parts; i < (p+1)*n/parts; i++ {
				if err := jsonv2.Unmarshal(raw.Instances[i], &s.Instances[i]); err != nil {
					errs[p] = fmt.Errorf("instance: read snapshot: instance %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadSnapshotFile reads the snapshot at path. A missing file returns an
// error wrapping fs.ErrNotExist.
func ReadSnapshotFile(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadSnapshot(f)
}

// WriteSnapshotFile writes s to path atomically: to a temporary file in
// tmpDir (on the same file system; "" means path's directory), then
// renamed over path. A reader, or a DEA restarted after this one was
// killed, sees the old snapshot or the new one, never a part.
//
// The file is not synced to disk (dea_ng did not either): the snapshot
// serves a restart of the DEA process, and after a crash of the machine
// there is nothing to resume, since containers do not survive a reboot.
// Syncing 10 MB on every change would cost more than all the rest.
func WriteSnapshotFile(path, tmpDir string, s *Snapshot) error {
	b, err := encodeSnapshot(s)
	if err != nil {
		return fmt.Errorf("instance: encode snapshot: %w", err)
	}
	return writeAtomic(path, tmpDir, b)
}

// writeAtomic writes the concatenation of parts to path atomically.
func writeAtomic(path, tmpDir string, parts ...[]byte) (retErr error) {
	if tmpDir == "" {
		tmpDir = filepath.Dir(path)
	}
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("instance: write snapshot: %w", err)
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for _, b := range parts {
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("instance: write snapshot: %w", err)
		}
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("instance: write snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("instance: write snapshot: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("instance: write snapshot: %w", err)
	}
	return nil
}

// snapshotter writes the Manager's snapshot on its own goroutine when
// told something changed; changes that come during a write make one more
// write, so the file always ends up with the latest state.
type snapshotter struct {
	m       *Manager
	writeMu sync.Mutex
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	err     error
	writes  int
	held    int  // hold calls not released
	pending bool // touched while held

	bufs [][]byte // reused by the writes (guarded by writeMu)
}

// hold defers writes until the returned function is called (then one
// write happens if anything changed): Resume changes every instance at
// once and writes once.
func (s *snapshotter) hold() (release func()) {
	s.mu.Lock()
	s.held++
	s.mu.Unlock()
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.held--
		touch := s.held == 0 && s.pending
		if touch {
			s.pending = false
		}
		s.mu.Unlock()
		if touch {
			s.touch()
		}
	})
}

func newSnapshotter(m *Manager) *snapshotter {
	s := &snapshotter{m: m, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *snapshotter) touch() {
	s.mu.Lock()
	if s.held > 0 {
		s.pending = true
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *snapshotter) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
			if err := s.write(); err != nil {
				s.m.log.Warn("snapshot", "err", err)
			}
		}
	}
}

// close stops the goroutine and writes a last time.
func (s *snapshotter) close() error {
	close(s.quit)
	<-s.done
	return s.write()
}

func (s *snapshotter) write() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	pieces, bufs, err := s.m.encodeSnapshot(s.bufs)
	if err == nil {
		s.bufs = bufs
		err = writeAtomic(s.m.paths.snapshot(), s.m.paths.tmp, pieces...)
	}
	s.mu.Lock()
	s.err = err
	s.writes++
	s.mu.Unlock()
	return err
}

// encodeSnapshot encodes the snapshot of the registered instances, each
// under its lock (no copy of the attributes), in parallel, in no
// particular order. It returns the document in pieces to be written one
// after the other, and the encoders' buffers (to pass again as bufs, so
// that the next write reuses them).
func (m *Manager) encodeSnapshot(bufs [][]byte) (pieces, used [][]byte, err error) {
	m.reg.mu.Lock()
	all := make([]*Instance, 0, len(m.reg.byID))
	for _, e := range m.reg.byID {
		all = append(all, e.inst)
	}
	m.reg.mu.Unlock()
	n := len(all)
	parts := max(min(runtime.GOMAXPROCS(0), n/256), 1)
	for len(bufs) < parts {
		bufs = append(bufs, nil)
	}
	bufs = bufs[:parts]
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			lo, hi := p*n/parts, (p+1)*n/parts
			b := bufs[p][:0]
			if cap(b) == 0 {
				b = make([]byte, 0, (hi-lo)*1100)
			}
			for _, inst := range all[lo:hi] {
				inst.mu.Lock()
				if inst.a.State.snapshotted() {
					if len(b) > 0 {
						b = append(b, ',')
					}
					b, errs[p] = inst.appendJSONLocked(b)
				}
				inst.mu.Unlock()
				if errs[p] != nil {
					return
				}
			}
			bufs[p] = b
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	head := Timestamp{time.Now()}.appendJSON([]byte(`{"time":`))
	pieces = append(pieces, append(head, `,"instances":[`...))
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(pieces) > 1 {
			pieces = append(pieces, []byte(","))
		}
		pieces = append(pieces, b)
	}
	pieces = append(pieces, []byte(`],"staging_tasks":[]}`))
	return pieces, bufs, nil
}

// SaveSnapshot writes the snapshot now and returns once it is written.
// The Manager also writes it by itself after every change of interest;
// this is for callers that need it written at a given point.
func (m *Manager) SaveSnapshot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.snap.write()
}

// SnapshotStats returns how many snapshots were written and the error of
// the last write.
func (m *Manager) SnapshotStats() (writes int, lastErr error) {
	m.snap.mu.Lock()
	defer m.snap.mu.Unlock()
	return m.snap.writes, m.snap.err
}
