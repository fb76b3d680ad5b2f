package container_test

import (
	"context"
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
)

// BenchmarkLifecycle: create, run /bin/true, wait, destroy.
func BenchmarkLifecycle(b *testing.B) {
	m := containertest.NewManager(b)
	stack := containertest.Stack(b)
	ctx := context.Background()
	for b.Loop() {
		c, err := m.Create(ctx, container.Spec{RootFS: stack})
		if err != nil {
			b.Fatal(err)
		}
		p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExec: run /bin/true in a running container and wait.
func BenchmarkExec(b *testing.B) {
	m := containertest.NewManager(b)
	c := containertest.NewContainer(b, m, container.Spec{})
	ctx := context.Background()
	for b.Loop() {
		p, err := c.Run(ctx, container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
