//go:build unix

package archive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/internal/archive"
	"github.com/paaskit/paaskit/internal/testutil"
)

func TestExtractChown(t *testing.T) {
	testutil.RequireRoot(t)
	s := newSandbox(t)
	data := tarball(t,
		ent{name: "d/", typ: tar.TypeDir, uid: 1, gid: 2},
		ent{name: "d/f", body: "x", uid: 3, gid: 4, mode: 0o4755},
		ent{name: "d/l", typ: tar.TypeSymlink, link: "/nowhere", uid: 5, gid: 6},
	)
	shift := func(id int) (int, error) { return id + 100000, nil }
	_, err := archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Chown: true, UIDMap: shift, GIDMap: shift, KeepSetuid: true})
	require.NoError(t, err)
	for p, want := range map[string][2]uint32{"d": {100001, 100002}, "d/f": {100003, 100004}, "d/l": {100005, 100006}} {
		fi, err := os.Lstat(filepath.Join(s.dest, p))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, want, [2]uint32{st.Uid, st.Gid}, p)
	}
	assertMode(t, filepath.Join(s.dest, "d/f"), fs.ModeSetuid|0o755) // chown did not clear it

	errMap := errors.New("unmapped")
	_, err = archive.Extract(t.Context(), bytes.NewReader(data), s.dest, archive.Options{Chown: true, UIDMap: func(int) (int, error) { return 0, errMap }})
	requireEntryErr(t, err, errMap, "d/")
}
