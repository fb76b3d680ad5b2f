package instance_test

import (
	"testing"

	"github.com/paaskit/paaskit/container/containertest"
)

// The real-container tests need the container agent: this binary
// re-executed.
func TestMain(m *testing.M) { containertest.Main(m) }
