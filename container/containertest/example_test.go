package containertest_test

import (
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
)

// A downstream test that runs a command in a real container.
func Example() {
	// In the test file: func TestMain(m *testing.M) { containertest.Main(m) }
	_ = func(t *testing.T) {
		m := containertest.NewManager(t)
		c := containertest.NewContainer(t, m, container.Spec{Limits: container.Limits{MemoryBytes: 64 << 20}})
		p, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		if err != nil {
			t.Fatal(err)
		}
		if code, err := p.Wait(t.Context()); err != nil || code != 0 {
			t.Fatalf("exit %d, %v", code, err)
		}
	}
}
