package testutil

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

var nameSeq atomic.Uint64

// UniqueName returns a name for a privileged resource (a container handle,
// a cgroup, a network interface) that no other test and no other test
// process on the machine uses: prefix, a shortened test name, the pid and a
// sequence number. It holds only [a-z0-9-] and is at most max bytes long
// (max < 16 is raised to 16), so it also fits interface names.
//
// release, when not nil, is registered with t.Cleanup before UniqueName
// returns, so the resource is released also when the test fails right after
// creating it. A release error fails the test.
func UniqueName(t testing.TB, prefix string, max int, release func(name string) error) string {
	t.Helper()
	if max < 16 {
		max = 16
	}
	suffix := fmt.Sprintf("-%d-%d", os.Getpid(), nameSeq.Add(1))
	var b strings.Builder
	for _, r := range strings.ToLower(prefix + t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	base := strings.TrimSuffix(b.String(), "-")
	if keep := max - len(suffix); len(base) > keep {
		base = base[:keep]
	}
	name := base + suffix
	if release != nil {
		t.Cleanup(func() {
			if err := release(name); err != nil {
				t.Errorf("release %s: %v", name, err)
			}
		})
	}
	return name
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers,
// for output that a test reads while a process writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
