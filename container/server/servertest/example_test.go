package servertest_test

import (
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/container/server/servertest"
)

// A downstream test of code that talks to a warden daemon.
func Example() {
	// In the test file: func TestMain(m *testing.M) { containertest.Main(m) }
	_ = func(t *testing.T) {
		m := containertest.NewManager(t)
		cl := servertest.Start(t, m).Client(t)
		c, err := cl.Create(t.Context(), container.Spec{RootFS: containertest.Stack(t)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/true"}, container.ProcessIO{})
		if err != nil {
			t.Fatal(err)
		}
		if code, err := p.Wait(t.Context()); err != nil || code != 0 {
			t.Fatalf("exit %d, %v", code, err)
		}
	}
}
