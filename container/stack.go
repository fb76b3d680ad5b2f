package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
	"github.com/paaskit/paaskit/internal/archive"
)

func isTarball(p string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// resolveStack returns the directory to use as the overlay's lower layer:
// the directory itself, or the tarball imported once into the depot's
// content-addressed stack cache (stacks/<sha256>).
func (m *Manager) resolveStack(ctx context.Context, rootfs string) (string, error) {
	fi, err := os.Stat(rootfs)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		dir, err := filepath.EvalSymlinks(rootfs)
		if err != nil {
			return "", err
		}
		return dir, checkStack(dir)
	}
	f, err := os.Open(rootfs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(m.depot, "stacks", sum)
	if _, err := os.Stat(dir); err == nil {
		return dir, checkStack(dir)
	}
	// One import per tarball, also across processes sharing the depot.
	lock := flock.New(dir + ".lock")
	if ok, err := lock.TryLockContext(ctx, 50e6); err != nil || !ok {
		return "", fmt.Errorf("lock stack %s: %w", sum, errors.Join(err, ctx.Err()))
	}
	defer lock.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(m.depot, "stacks"), ".import-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := archive.ExtractAuto(ctx, f, tmp, archive.Options{Chown: true, AllowDevices: true, KeepSetuid: true, Limits: archive.Limits{MaxBytes: -1}}); err != nil {
		return "", fmt.Errorf("import %s: %w", rootfs, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	return dir, checkStack(dir)
}

// checkStack refuses a stack whose mount points for the container's
// special file systems are symbolic links: mounting on them would follow
// the link, possibly out of the container.
func checkStack(dir string) error {
	for _, p := range []string{"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "dev/null"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return &SpecError{Field: "RootFS", Reason: fmt.Sprintf("/%s in the stack is a symbolic link", p)}
		}
	}
	return nil
}

// parseStartTime reads field 22 (starttime) of a /proc/<pid>/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted after its last ')'.
func parseStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("container: malformed stat line %q", stat)
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("container: short stat line %q", stat)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}
