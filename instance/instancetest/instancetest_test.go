package instancetest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/instance/instancetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContainersRecordAndSimulate(t *testing.T) {
	ctx := t.Context()
	f := instancetest.NewContainers()
	c, err := f.Create(ctx, container.Spec{Handle: "h", RootFS: "/r", Properties: map[string]string{"k": "v"}})
	require.NoError(t, err)
	_, err = f.Create(ctx, container.Spec{Handle: "h", RootFS: "/r"})
	assert.ErrorIs(t, err, container.ErrAlreadyExists)
	_, err = f.Create(ctx, container.Spec{Handle: "../x", RootFS: "/r"})
	assert.ErrorIs(t, err, container.ErrInvalidSpec)

	pm, err := c.NetIn(ctx, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, pm.HostPort, pm.ContainerPort)
	p, err := c.Run(ctx, container.ProcessSpec{ID: "app", Path: "/bin/sh"})
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"app"}, info.ProcessIDs)
	assert.Equal(t, []container.PortMapping{pm}, info.MappedPorts)

	fc := f.Container("h")
	fp := fc.Process("app")
	fp.Write("out\n", "err\n")
	fp.OOM()
	st, err := p.Status(ctx)
	require.NoError(t, err)
	assert.True(t, st.OOMKilled)
	assert.Equal(t, 137, st.Code)
	info, err = c.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"out of memory"}, info.Events)
	assert.Empty(t, info.ProcessIDs)

	var out, errb bytes.Buffer
	ap, err := c.Attach(ctx, "app", &out, &errb)
	require.NoError(t, err)
	_, err = ap.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "out\n", out.String())
	assert.Equal(t, "err\n", errb.String())
	_, err = c.Attach(ctx, "nope", nil, nil)
	assert.ErrorIs(t, err, container.ErrNotFound)

	handles, err := f.List(ctx, map[string]string{"k": "v"})
	require.NoError(t, err)
	assert.Equal(t, []string{"h"}, handles)
	handles, err = f.List(ctx, map[string]string{"k": "w"})
	require.NoError(t, err)
	assert.Empty(t, handles)

	p2, err := c.Run(ctx, container.ProcessSpec{ID: "second", Path: "/bin/sh"})
	require.NoError(t, err)
	require.NoError(t, c.Stop(ctx, false))
	st, _ = p2.Status(ctx)
	assert.Equal(t, 143, st.Code)
	_, err = c.Run(ctx, container.ProcessSpec{ID: "third", Path: "/bin/sh"})
	assert.ErrorIs(t, err, container.ErrStopped)
	require.NoError(t, c.Destroy(ctx))
	assert.ErrorIs(t, c.Destroy(ctx), container.ErrNotFound)
	_, err = f.Lookup(ctx, "h")
	assert.ErrorIs(t, err, container.ErrNotFound)
	assert.True(t, fc.Destroyed())
	assert.Equal(t, []string{"create", "create", "netin", "run", "info", "info", "attach", "attach", "run", "stop", "run", "destroy", "destroy", "lookup"}, f.Ops("h"))
	assert.Empty(t, f.Live())
}

func TestContainersFailNextAndHang(t *testing.T) {
	f := instancetest.NewContainers()
	boom := errors.New("boom")
	f.FailNext("create", boom)
	_, err := f.Create(t.Context(), container.Spec{Handle: "h", RootFS: "/r"})
	assert.ErrorIs(t, err, boom)
	c, err := f.Create(t.Context(), container.Spec{Handle: "h", RootFS: "/r"})
	require.NoError(t, err, "only the next call fails")
	f.SetHangStop(true)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Stop(ctx, false), context.DeadlineExceeded)
	assert.NoError(t, c.Stop(t.Context(), true), "kill does not hang")
}

func TestContainersServeTheHandler(t *testing.T) {
	f := instancetest.NewContainers()
	f.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	c, err := f.Create(t.Context(), container.Spec{Handle: "h", RootFS: "/r"})
	require.NoError(t, err)
	pm, err := c.NetIn(t.Context(), 0, 0)
	require.NoError(t, err)
	_, err = c.Run(t.Context(), container.ProcessSpec{ID: "app", Path: "/bin/sh"})
	require.NoError(t, err)
	resp, err := http.Get("http://127.0.0.1:" + itoa(int(pm.HostPort)) + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hi", string(b))
	f.Container("h").Process("app").Exit(0)
	require.Eventually(t, func() bool {
		_, err := http.Get("http://127.0.0.1:" + itoa(int(pm.HostPort)) + "/")
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "stops serving when the process exits")
}

func TestDroplets(t *testing.T) {
	d := instancetest.NewDroplets(t.TempDir())
	tgz, err := instancetest.NewDroplet(map[string]string{"app/bin/run": "#!/bin/sh\n", "staging_info.yml": "start_command: x\n"})
	require.NoError(t, err)
	sum := sha1.Sum(tgz)
	sha := d.Add(tgz)
	assert.Equal(t, hex.EncodeToString(sum[:]), sha)

	p, err := d.Fetch(t.Context(), sha, "")
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, tgz, b)
	_, err = d.Fetch(t.Context(), sha, "")
	require.NoError(t, err)
	assert.Equal(t, 1, d.Downloads(sha), "the second fetch finds it on disk")
	_, err = d.Fetch(t.Context(), strings.Repeat("0", 40), "")
	assert.ErrorIs(t, err, os.ErrNotExist)

	have, err := d.SHA1s(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sha}, have)
	require.NoError(t, d.Remove(t.Context(), sha))
	assert.NoFileExists(t, p)

	// The tarball's content.
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	modes := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		modes[h.Name] = h.Mode
	}
	assert.Equal(t, map[string]int64{"app/": 0o755, "app/bin/": 0o755, "app/bin/run": 0o755, "staging_info.yml": 0o644}, modes)

	app, err := instancetest.AppDroplet()
	require.NoError(t, err)
	assert.NotEmpty(t, app)
}

func itoa(n int) string { return strconv.Itoa(n) }
