package staging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/paaskit/paaskit/container"
)

// HostStack makes a stack out of the host's own system: dir (created if
// missing) becomes a small root file system holding mount points, /etc
// files for the staging user and empty /tmp, /home, /proc, /dev, /sys, and
// the returned Stack bind-mounts the host's /usr, /bin, /sbin, /lib* and
// /etc/ssl, /etc/alternatives read-only over it (directories that are links
// on the host, as on merged-/usr systems, become the same links in dir).
//
// It is for development and tests: the host's programs and libraries are
// what buildpacks see. Production uses a real stack root file system
// (cflinuxfs-like), given to WithStack directly. The user is "vcap" with
// uid and gid 10001.
func HostStack(dir string) (Stack, error) {
	st := Stack{RootFS: dir, User: "vcap", UID: 10001, GID: 10001}
	for _, d := range []string{"etc", "tmp", "home/vcap", "proc", "dev", "sys", "run", "root", "var/tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return Stack{}, fmt.Errorf("staging: host stack: %w", err)
		}
	}
	_ = os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	_ = os.Chmod(filepath.Join(dir, "var/tmp"), 0o1777)
	_ = os.Lchown(filepath.Join(dir, "home/vcap"), st.UID, st.GID)
	uid := strconv.Itoa(st.UID)
	files := map[string]string{
		"etc/passwd":        "root:x:0:0:root:/root:/bin/bash\nvcap:x:" + uid + ":" + uid + "::/home/vcap:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":         "root:x:0:\nvcap:x:" + uid + ":\nnogroup:x:65534:\n",
		"etc/hosts":         "127.0.0.1 localhost\n::1 localhost\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
		"etc/resolv.conf":   "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return Stack{}, fmt.Errorf("staging: host stack: %w", err)
		}
	}
	for _, p := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache"} {
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return Stack{}, fmt.Errorf("staging: host stack: %w", err)
		}
		dst := filepath.Join(dir, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return Stack{}, fmt.Errorf("staging: host stack: %w", err)
			}
			_ = os.Remove(dst)
			if err := os.Symlink(target, dst); err != nil {
				return Stack{}, fmt.Errorf("staging: host stack: %w", err)
			}
			continue
		}
		st.BindMounts = append(st.BindMounts, container.BindMount{SrcPath: p, DstPath: p, ReadOnly: true})
	}
	return st, nil
}
