package staging_test

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/staging"
)

type zentry struct {
	name, body string
	mode       os.FileMode
}

func writeZip(t *testing.T, entries []zentry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.zip")
	f, err := os.Create(p)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	return p
}

func TestUnzip(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		entries []zentry
		limits  staging.ZipLimits
		bad     bool
	}{
		{name: "ok", entries: []zentry{{name: "a/b.sh", body: "x", mode: 0o755}, {name: "héllo.txt", body: "y"}, {name: "l", body: "a/b.sh", mode: os.ModeSymlink | 0o777}}},
		{name: "zip-slip", entries: []zentry{{name: "../../evil", body: "x"}}, bad: true},
		{name: "absolute", entries: []zentry{{name: "/etc/evil", body: "x"}}, bad: true},
		{name: "through symlink", entries: []zentry{{name: "link", body: outside, mode: os.ModeSymlink | 0o777}, {name: "link/evil", body: "x"}}, bad: true},
		{name: "not UTF-8", entries: []zentry{{name: "bad\xff", body: "x"}}, bad: true},
		{name: "too big", entries: []zentry{{name: "big", body: strings.Repeat("x", 2000)}}, limits: staging.ZipLimits{MaxBytes: 1000}, bad: true},
		{name: "too many", entries: []zentry{{name: "a"}, {name: "b"}, {name: "c"}}, limits: staging.ZipLimits{MaxEntries: 2}, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			err := staging.Unzip(t.Context(), writeZip(t, tc.entries), dst, -1, -1, tc.limits)
			if tc.bad {
				require.ErrorIs(t, err, staging.ErrPackageInvalid)
				_, serr := os.Stat(filepath.Join(outside, "evil"))
				assert.ErrorIs(t, serr, os.ErrNotExist)
				return
			}
			require.NoError(t, err)
			fi, err := os.Stat(filepath.Join(dst, "a/b.sh"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
			assert.FileExists(t, filepath.Join(dst, "héllo.txt"))
			target, err := os.Readlink(filepath.Join(dst, "l"))
			require.NoError(t, err)
			assert.Equal(t, "a/b.sh", target)
		})
	}
}

func TestParseProcfileAndRelease(t *testing.T) {
	_, err := staging.ParseProcfile(strings.NewReader("nothing here\n"))
	assert.ErrorIs(t, err, staging.ErrInvalidProcfile)
	rel, err := staging.ParseRelease([]byte("---\ndefault_process_types:\n  web: a b\nconfig_vars:\n  X: y\n"))
	require.NoError(t, err)
	assert.Equal(t, "a b", rel.DefaultProcessTypes["web"])
	assert.Equal(t, "y", rel.ConfigVars["X"])
	_, err = staging.ParseRelease([]byte("default_process_types: [x"))
	assert.ErrorIs(t, err, staging.ErrReleaseFailed)
}

func TestRequestValidate(t *testing.T) {
	ok := staging.Request{AppID: "a", Stack: "s", Package: staging.Source{Key: "p/a"}, Droplet: staging.Source{URL: "http://cc/upload"}}
	require.NoError(t, ok.Validate())
	bad := []func(r *staging.Request){
		func(r *staging.Request) { r.AppID = "" },
		func(r *staging.Request) { r.AppID = "../x" },
		func(r *staging.Request) { r.Package = staging.Source{} },
		func(r *staging.Request) { r.Droplet = staging.Source{URL: "ftp://x"} },
		func(r *staging.Request) { r.Package = staging.Source{Key: "../x"} },
		func(r *staging.Request) { r.Buildpacks = []staging.BuildpackSource{{}} },
		func(r *staging.Request) { r.Buildpacks = []staging.BuildpackSource{{Dir: "/a", Git: "g"}} },
		func(r *staging.Request) { r.SkipDetect = true },
		func(r *staging.Request) { r.Env = map[string]string{"1X": "y"} },
	}
	for i, f := range bad {
		r := ok
		f(&r)
		assert.ErrorIs(t, r.Validate(), staging.ErrInvalidRequest, "case %d", i)
	}
}
