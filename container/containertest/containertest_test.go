package containertest_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { containertest.Main(m) }

func TestHelpersMakeAWorkingContainerAndCleanUp(t *testing.T) {
	var m *container.Manager
	var c *container.Container
	t.Run("inner", func(t *testing.T) {
		m = containertest.NewManager(t)
		c = containertest.NewContainer(t, m, container.Spec{})
		var out bytes.Buffer
		p, err := c.Run(t.Context(), container.ProcessSpec{Path: "/bin/echo", Args: []string{"hi"}}, container.ProcessIO{Stdout: &out})
		require.NoError(t, err)
		code, err := p.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 0, code)
		assert.Equal(t, "hi\n", out.String())
	})
	if m == nil || c == nil {
		return // skipped: not root
	}
	assert.NoDirExists(t, c.Path(), "the container outlived its test")
	_, err := m.List(context.Background(), nil)
	assert.ErrorIs(t, err, container.ErrClosed, "the manager outlived its test")
}
