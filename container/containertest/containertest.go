// Package containertest helps downstream tests use real containers: a
// test stack built from the host's own binaries, a Manager on a temporary
// depot that destroys its containers when the test ends, and the TestMain
// that a test binary using containers needs.
//
// Real containers need Linux and root. The helpers skip the test with a
// message saying so when run as another user, and fail it instead when
// the CI environment variable is set, so that CI never passes by skipping.
package containertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/internal/testutil"
)

// Main is the TestMain of a test binary that creates containers: it runs
// the container agent when the binary was re-executed as one, and
// otherwise runs the tests and removes the test stack afterwards.
//
//	func TestMain(m *testing.M) { containertest.Main(m) }
func Main(m *testing.M) {
	if container.Init() {
		return
	}
	testutil.Main(m)
}

// Stack returns the directory of a minimal root filesystem (sh, bash,
// coreutils, python3 when the host has it, with their shared libraries;
// /etc/passwd with root and the unprivileged user "vcap", uid 10001),
// built once per test binary from the host's binaries. Treat it as
// read-only. Main removes it.
func Stack(t testing.TB) string {
	t.Helper()
	return testutil.Stack(t)
}

// NewManager returns a Manager on a temporary depot. When the test ends,
// every container of the Manager is destroyed and the Manager closed.
// It skips the test (fails it in CI) when not running as root.
func NewManager(t testing.TB, opts ...container.Option) *container.Manager {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireOverlay(t)
	m, err := container.New(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("containertest: new manager: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cs, err := m.List(ctx, nil)
		if err != nil {
			t.Errorf("containertest: list containers: %v", err)
		}
		for _, c := range cs {
			if err := c.Destroy(ctx); err != nil {
				t.Errorf("containertest: destroy %s: %v", c.Handle(), err)
			}
		}
		m.Close()
	})
	return m
}

// NewContainer creates a container on the test stack (unless spec names
// a RootFS) with a handle unique to the test and the process, destroyed
// when the test ends.
func NewContainer(t testing.TB, m *container.Manager, spec container.Spec) *container.Container {
	t.Helper()
	if spec.RootFS == "" {
		spec.RootFS = Stack(t)
	}
	if spec.Handle == "" {
		spec.Handle = testutil.UniqueName(t, "ct-", container.MaxHandleLen, nil)
	}
	c, err := m.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("containertest: create container: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Destroy(ctx); err != nil && !isGone(err) {
			t.Errorf("containertest: destroy %s: %v", c.Handle(), err)
		}
	})
	return c
}

func isGone(err error) bool {
	return err == nil || errors.Is(err, container.ErrNotFound) || errors.Is(err, container.ErrClosed)
}
