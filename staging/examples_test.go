package staging_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/staging"
	"github.com/paaskit/paaskit/staging/stagingtest"
)

// probe fetches http://127.0.0.1:8080/ from inside the container, retrying
// for a while.
const probe = `import time, urllib.request
for i in range(100):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8080/", timeout=2).read().decode(), end="")
        break
    except Exception:
        time.sleep(0.1)
`

func TestExampleAppsStageAndServe(t *testing.T) {
	admin, err := filepath.Abs("../examples/buildpacks")
	require.NoError(t, err)
	h := newHarness(t, staging.WithAdminBuildpacks(admin))
	tests := []struct{ app, detected, want string }{
		{"python-web", "Python", "Hello from paaskit python-web"},
		{"static-site", "Staticfile", "paaskit static-site"},
		{"procfile-app", "Procfile", "Hello from paaskit procfile-app"},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			h.t = t
			zipPath := filepath.Join(t.TempDir(), "app.zip")
			f, err := os.Create(zipPath)
			require.NoError(t, err)
			require.NoError(t, stagingtest.ZipDir(f, filepath.Join("../examples/apps", tc.app)))
			require.NoError(t, f.Close())
			req := h.request(h.putFile(zipPath))
			req.AdminBuildpacks = []string{"python", "staticfile", "procfile"}
			res, _, err := h.stage(req)
			require.NoError(t, err)
			assert.Equal(t, tc.detected, res.DetectedBuildpack)

			c := containertest.NewContainer(t, h.m, container.Spec{User: "vcap"})
			rc, err := h.store.Get(context.Background(), req.Droplet.Key)
			require.NoError(t, err)
			require.NoError(t, c.StreamIn(t.Context(), staging.DropletRoot, "vcap", rc))
			rc.Close()
			spec, err := staging.Launch(&staging.StagingInfo{StartCommand: res.StartCommand}, "", []string{"PORT=8080"}, staging.LaunchOptions{})
			require.NoError(t, err)
			appOut := &syncWriter{w: &bytes.Buffer{}}
			_, err = c.Run(t.Context(), spec, container.ProcessIO{Stdout: appOut, Stderr: appOut})
			require.NoError(t, err)
			var out bytes.Buffer
			p, err := c.Run(t.Context(), container.ProcessSpec{Path: "python3", Args: []string{"-c", probe}}, container.ProcessIO{Stdout: &out, Stderr: &out})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err = p.Wait(ctx)
			require.NoError(t, err)
			assert.Contains(t, out.String(), tc.want)
		})
	}
}
