package testutil

import (
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestUniqueName(t *testing.T) {
	var released []string
	t.Run("Sub Test/With Spaces", func(t *testing.T) {
		a := UniqueName(t, "pk-", 15, func(n string) error { released = append(released, n); return nil })
		b := UniqueName(t, "pk-", 15, nil)
		assert.NotEqual(t, a, b)
		for _, n := range []string{a, b} {
			assert.LessOrEqual(t, len(n), 16)
			assert.Regexp(t, regexp.MustCompile(`^[a-z0-9-]+$`), n)
			assert.Contains(t, n, "-"+strconv.Itoa(os.Getpid())+"-")
		}
		long := UniqueName(t, "container-", 200, nil)
		assert.True(t, strings.HasPrefix(long, "container-testuniquename-sub-test-with-spaces-"), long)
		assert.Empty(t, released, "released before the test ended")
	})
	assert.Len(t, released, 1, "the release func runs at the end of the test that made the name")
}

func TestUnmetFailsInCI(t *testing.T) {
	// Run Unmet in a child test binary process, once with CI set and once
	// without, and look at how it ended.
	if os.Getenv("TESTUTIL_UNMET_CHILD") == "1" {
		Unmet(t, "a unicorn")
		return
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"true", true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUnmetFailsInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTUTIL_UNMET_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if tc.wantFail {
			require.Error(t, err, "%s", out)
			assert.Contains(t, string(out), "needs a unicorn (CI is set")
		} else {
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "SKIP")
			assert.Contains(t, string(out), "needs a unicorn")
		}
	}
}

// TestStackIsSelfContained checks, without root, that every ELF file in
// the stack finds its interpreter and libraries inside the stack.
func TestStackIsSelfContained(t *testing.T) {
	root := Stack(t)
	for _, p := range requiredPrograms {
		fi, err := os.Stat(filepath.Join(root, "bin", p))
		require.NoError(t, err, "stack lacks /bin/%s", p)
		assert.True(t, fi.Mode().IsRegular())
	}
	checked := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := elf.Open(p)
		if err != nil {
			return nil // not ELF
		}
		defer f.Close()
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		for _, lib := range libs {
			matches, _ := filepath.Glob(filepath.Join(root, "usr/lib*", "*", lib))
			direct, _ := filepath.Glob(filepath.Join(root, "usr/lib*", lib))
			assert.NotEmpty(t, append(matches, direct...), "%s needs %s, which the stack lacks", p, lib)
		}
		checked++
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, checked, len(requiredPrograms))
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	require.NoError(t, err)
	assert.Contains(t, string(passwd), "vcap:x:10001:10001:")
	fi, err := os.Stat(filepath.Join(root, "tmp"))
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSticky|0o777, fi.Mode()&(fs.ModeSticky|fs.ModePerm))
}

// TestStackRunsInChroot runs the stack's programs with the stack as their
// root, which needs root.
func TestStackRunsInChroot(t *testing.T) {
	RequireRoot(t)
	root := Stack(t)
	out, err := exec.Command("chroot", root, "/bin/sh", "-c", "echo hello from $(cat /etc/hostname 2>/dev/null || echo stack); ls /").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "hello from stack")
	out, err = exec.Command("chroot", root, "/bin/bash", "-c", "id -u vcap").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "10001\n", string(out))
	if _, err := os.Lstat(filepath.Join(root, "usr/bin/python3")); err == nil {
		out, err = exec.Command("chroot", root, "/usr/bin/python3", "-c", "import json, socket, http.server; print(json.dumps([1]))").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "[1]\n", string(out))
	}
}
