package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/internal/archive"
	"github.com/paaskit/paaskit/internal/testutil"
)

// sourceTree builds a small tree with every kind of entry Create handles.
func sourceTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "app")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "bin"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "empty"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(src, "bin/run"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "data"), []byte("payload"), 0o600))
	require.NoError(t, os.Link(filepath.Join(src, "data"), filepath.Join(src, "data.hard")))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(src, "abs")))
	require.NoError(t, os.Symlink("bin/run", filepath.Join(src, "rel")))
	return src
}

// list returns "name type [linkname]" for each entry of a tar stream.
func list(t *testing.T, data []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		line := hdr.Name + " " + string(hdr.Typeflag)
		if hdr.Linkname != "" {
			line += " " + hdr.Linkname
		}
		out = append(out, line)
	}
}

func TestCreate(t *testing.T) {
	src := sourceTree(t)
	var buf bytes.Buffer
	require.NoError(t, archive.Create(t.Context(), &buf, src, archive.CreateOptions{}))
	assert.Equal(t, []string{
		"abs 2 /etc/passwd",
		"bin/ 5",
		"bin/run 0",
		"data 0",
		"data.hard 1 data",
		"empty/ 5",
		"rel 2 bin/run",
	}, list(t, buf.Bytes()))

	s := newSandbox(t)
	st, err := archive.Extract(t.Context(), &buf, s.dest, archive.Options{})
	require.NoError(t, err)
	assert.Equal(t, archive.Stats{Files: 2, Dirs: 2, Symlinks: 2, Hardlinks: 1, Bytes: 25}, st)
	assert.Equal(t, tree(t, src), tree(t, s.dest))
}

func TestCreateOptions(t *testing.T) {
	src := sourceTree(t)
	create := func(t *testing.T, src string, opts archive.CreateOptions) ([]string, error) {
		var buf bytes.Buffer
		err := archive.Create(t.Context(), &buf, src, opts)
		if err != nil {
			return nil, err
		}
		return list(t, buf.Bytes()), nil
	}
	t.Run("include root", func(t *testing.T) {
		got, err := create(t, src, archive.CreateOptions{IncludeRoot: true, Paths: []string{"bin"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"app/ 5", "app/bin/ 5", "app/bin/run 0"}, got)
	})
	t.Run("paths", func(t *testing.T) {
		got, err := create(t, src, archive.CreateOptions{Paths: []string{"rel", "./bin/run", "data.hard"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"rel 2 bin/run", "bin/run 0", "data.hard 0"}, got)
	})
	t.Run("single file", func(t *testing.T) {
		got, err := create(t, filepath.Join(src, "data"), archive.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"data 0"}, got)
	})
	t.Run("source symlink is not followed", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "link")
		require.NoError(t, os.Symlink(src, link))
		got, err := create(t, link, archive.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"link 2 " + src}, got)
	})
	t.Run("unsafe paths", func(t *testing.T) {
		s := newSandbox(t)
		require.NoError(t, os.Symlink(s.sibling, filepath.Join(s.dest, "out")))
		for _, p := range []string{"../sibling", "/etc/passwd", "a/../../x", "out/canary"} {
			_, err := create(t, s.dest, archive.CreateOptions{Paths: []string{p}})
			requireEntryErr(t, err, archive.ErrUnsafePath, p)
		}
		// The link itself is archived as a link; its target is not read.
		got, err := create(t, s.dest, archive.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"out 2 " + s.sibling}, got)
	})
	t.Run("missing source", func(t *testing.T) {
		_, err := create(t, filepath.Join(src, "missing"), archive.CreateOptions{})
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// TestCreateStackRoundTrip archives the test stack (a merged-/usr root file
// system full of absolute links) and extracts it again.
func TestCreateStackRoundTrip(t *testing.T) {
	stack := testutil.Stack(t)
	var buf bytes.Buffer
	require.NoError(t, archive.Create(t.Context(), &buf, stack, archive.CreateOptions{}))
	s := newSandbox(t)
	st, err := archive.Extract(t.Context(), &buf, s.dest, archive.Options{KeepSetuid: true, PreserveTimes: true})
	require.NoError(t, err)
	t.Logf("%+v", st)
	assert.Equal(t, tree(t, stack), tree(t, s.dest))
	s.checkOutside(t)
}

// TestGNUTarInterop checks that GNU tar reads what Create writes and that
// Extract reads what GNU tar writes, with the same result.
func TestGNUTarInterop(t *testing.T) {
	gnuTar := testutil.RequireCommand(t, "tar")
	src := sourceTree(t)

	var ours bytes.Buffer
	require.NoError(t, archive.Create(t.Context(), &ours, src, archive.CreateOptions{}))
	byGNU := t.TempDir()
	cmd := exec.CommandContext(t.Context(), gnuTar, "-x", "-C", byGNU)
	cmd.Stdin = &ours
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, tree(t, src), tree(t, byGNU))

	theirs, err := exec.CommandContext(t.Context(), gnuTar, "-c", "-z", "-C", src, ".").Output()
	require.NoError(t, err)
	s := newSandbox(t)
	_, err = archive.ExtractAuto(t.Context(), bytes.NewReader(theirs), s.dest, archive.Options{})
	require.NoError(t, err)
	assert.Equal(t, tree(t, src), tree(t, s.dest))
}

func TestCreateCancelled(t *testing.T) {
	src := sourceTree(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := archive.Create(ctx, io.Discard, src, archive.CreateOptions{})
	require.ErrorIs(t, err, context.Canceled)
}
