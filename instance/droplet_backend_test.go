package instance_test

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/instance"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The package droplet Registry as the Manager's droplet source: starts
// of one droplet download it once, and the reaper removes it when
// nothing uses it.
func TestDropletRegistryBackend(t *testing.T) {
	tgz := testDroplet(t)
	sum := sha1.Sum(tgz)
	sha := hex.EncodeToString(sum[:])
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(tgz)
	}))
	defer srv.Close()
	reg, err := droplet.OpenRegistry(t.TempDir())
	require.NoError(t, err)
	defer reg.Close()
	store := instance.NewDropletRegistry(reg)

	e := newEnv(t)
	m, err := instance.New(instance.Config{
		BaseDir: t.TempDir(), Containers: e.c, Droplets: store,
		Stacks: map[string]string{"s": "/stacks/s"},
	}, instance.WithReapers(instance.ReaperConfig{}))
	require.NoError(t, err)
	defer m.Close()

	var wg sync.WaitGroup
	var insts []*instance.Instance
	for i := range 10 {
		inst, err := m.Create(instance.Spec{ApplicationID: "a", InstanceIndex: i, DropletSHA1: sha, DropletURI: srv.URL + "/d", Limits: instance.Limits{Mem: 64}})
		require.NoError(t, err)
		insts = append(insts, inst)
		wg.Go(func() { assert.NoError(t, m.Start(t.Context(), inst)) })
	}
	wg.Wait()
	assert.Equal(t, int32(1), hits.Load())
	p, err := store.Fetch(t.Context(), sha, "")
	require.NoError(t, err)
	assert.FileExists(t, p)
	have, err := store.SHA1s(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sha}, have)

	got, err := m.ReapUnreferencedDroplets(t.Context())
	require.NoError(t, err)
	assert.Empty(t, got, "in use")
	for _, inst := range insts {
		require.NoError(t, m.Stop(t.Context(), inst))
	}
	got, err = m.ReapUnreferencedDroplets(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sha}, got)
	_, err = os.Stat(p)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
