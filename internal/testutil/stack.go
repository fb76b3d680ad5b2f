package testutil

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// StackPrograms are the host programs copied into the test stack when the
// host has them. sh, bash, cat, echo, sleep, true and env are required;
// the others are taken when present.
var StackPrograms = []string{
	"sh", "bash", "dash", "cat", "echo", "sleep", "true", "false", "env",
	"ls", "id", "hostname", "mkdir", "rm", "rmdir", "touch", "head", "tail",
	"dd", "yes", "stat", "readlink", "ln", "cp", "mv", "chmod", "chown",
	"wc", "grep", "sed", "tr", "sort", "uniq", "seq", "printf", "test",
	"kill", "uname", "whoami", "date", "tee", "basename", "dirname",
	"mktemp", "du", "df", "stty", "tty", "mknod", "tar", "gzip", "find", "xargs", "cut",
	"awk", "nproc", "timeout", "pwd", "ps", "mount", "umount", "nc", "python3",
}

var requiredPrograms = []string{"sh", "bash", "cat", "echo", "sleep", "true", "env"}

// StackUser is the unprivileged user of the test stack, as warden's vcap.
const (
	StackUser = "vcap"
	StackUID  = 10001
	StackGID  = 10001
)

var (
	stackOnce sync.Once
	stackDir  string
	stackErr  error
)

// Stack returns the directory of the test stack, building it on first use
// in this test binary. The directory is shared by all tests of the binary:
// treat it as read-only (containers use it as the lower layer of an
// overlay). [Main] removes it when the tests end.
func Stack(t testing.TB) string {
	t.Helper()
	stackOnce.Do(func() {
		dir, err := os.MkdirTemp("", "paaskit-stack-")
		if err != nil {
			stackErr = err
			return
		}
		if err := BuildStack(dir); err != nil {
			stackErr = errors.Join(err, os.RemoveAll(dir))
			return
		}
		stackDir = dir
	})
	if stackErr != nil {
		t.Fatalf("build test stack: %v", stackErr)
	}
	return stackDir
}

// Main runs the tests of m, removes the test stack if one was built, and
// exits with the tests' exit code. Call it from TestMain (after any
// re-exec dispatch such as container.Init).
func Main(m *testing.M) {
	code := m.Run()
	if stackDir != "" {
		if err := os.RemoveAll(stackDir); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: remove test stack: %v\n", err)
		}
	}
	os.Exit(code)
}

// BuildStack writes a minimal root filesystem into dir, which must be
// empty or missing: the programs of [StackPrograms] that the host has,
// python3 with its standard library when the host has it, every shared
// library they need (read from their ELF headers, recursively), a merged
// /usr layout (bin, sbin, lib, lib64 are links into usr), /etc/passwd and
// /etc/group with root, [StackUser] and nobody, and empty proc, dev, sys,
// tmp, run, home and root directories.
func BuildStack(dir string) error {
	b := &stackBuilder{root: dir, done: map[string]bool{}, searchDirs: librarySearchDirs()}
	return b.build()
}

type stackBuilder struct {
	root       string
	done       map[string]bool // stack paths already written
	searchDirs []string
}

func (b *stackBuilder) build() error {
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return err
	}
	// The root of a container's file system must be searchable by all.
	if err := os.Chmod(b.root, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "proc", "dev", "sys", "tmp", "run", "etc", "home/" + StackUser, "root", "var/tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(b.root, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(b.root, l)); err != nil {
			return err
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.Chmod(filepath.Join(b.root, d), fs.ModeSticky|0o777); err != nil {
			return err
		}
	}
	if err := os.Chown(filepath.Join(b.root, "home", StackUser), StackUID, StackGID); err != nil && os.Geteuid() == 0 {
		return err
	}
	files := map[string]string{
		"etc/passwd":      fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:%s:/home/%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", StackUser, StackUID, StackGID, StackUser, StackUser),
		"etc/group":       fmt.Sprintf("root:x:0:\n%s:x:%d:\nnogroup:x:65534:\n", StackUser, StackGID),
		"etc/hosts":       "127.0.0.1 localhost\n",
		"etc/resolv.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(b.root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, name := range StackPrograms {
		host := findProgram(name)
		if host == "" {
			continue
		}
		if name == "python3" {
			if err := b.addPython(host); err != nil {
				return fmt.Errorf("python3: %w", err)
			}
			continue
		}
		if err := b.addFile(host, "usr/bin/"+name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, name := range requiredPrograms {
		if _, err := os.Stat(filepath.Join(b.root, "usr/bin", name)); err != nil {
			return fmt.Errorf("test stack: the host has no %s: %w", name, err)
		}
	}
	return nil
}

// findProgram looks for name in the system directories only, not in PATH,
// so that wrappers such as pyenv shims are not taken for the program.
func findProgram(name string) string {
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// addFile copies the host file (following links) to rel in the stack and,
// when it is an ELF object, everything it needs.
func (b *stackBuilder) addFile(host, rel string) error {
	if b.done[rel] {
		return nil
	}
	b.done[rel] = true
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		return err
	}
	if err := copyFile(real, filepath.Join(b.root, rel)); err != nil {
		return err
	}
	return b.addDeps(real)
}

// addDeps adds the interpreter and the DT_NEEDED libraries of an ELF file;
// a file that is not ELF needs nothing.
func (b *stackBuilder) addDeps(host string) error {
	f, err := elf.Open(host)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, err := io.ReadAll(p.Open())
		if err != nil {
			return err
		}
		ip := strings.TrimRight(string(interp), "\x00")
		if err := b.addFile(ip, strings.TrimPrefix(ip, "/")); err != nil {
			return fmt.Errorf("interpreter %s: %w", ip, err)
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	dirs := b.searchDirs
	if rp, _ := f.DynString(elf.DT_RUNPATH); len(rp) > 0 {
		dirs = append(strings.Split(strings.ReplaceAll(rp[0], "$ORIGIN", filepath.Dir(host)), ":"), dirs...)
	}
	for _, lib := range needed {
		hostLib := resolveLibrary(lib, dirs, f.Class, f.Machine)
		if hostLib == "" {
			return fmt.Errorf("%s needs %s, found in none of %v", host, lib, dirs)
		}
		if err := b.addFile(hostLib, strings.TrimPrefix(hostLib, "/")); err != nil {
			return err
		}
	}
	return nil
}

func resolveLibrary(name string, dirs []string, class elf.Class, machine elf.Machine) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == machine
		f.Close()
		if ok {
			return p
		}
	}
	return ""
}

func librarySearchDirs() []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu", "riscv64": "riscv64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu"}[runtime.GOARCH]
	dirs := []string{}
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	dirs = append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
	confs, _ := filepath.Glob("/etc/ld.so.conf.d/*.conf")
	for _, c := range confs {
		data, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "/") {
				dirs = append(dirs, line)
			}
		}
	}
	return dirs
}

// pythonSkip are the parts of the standard library the tests never use.
var pythonSkip = map[string]bool{"test": true, "tests": true, "__pycache__": true, "idlelib": true, "tkinter": true, "turtledemo": true, "ensurepip": true, "lib2to3": true, "site-packages": true, "dist-packages": true, "pydoc_data": true}

func (b *stackBuilder) addPython(host string) error {
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		return err
	}
	version := filepath.Base(real) // python3.11
	if !strings.HasPrefix(version, "python3.") {
		return nil // not a Debian-style python; leave it out
	}
	lib := filepath.Join("/usr/lib", version)
	if _, err := os.Stat(filepath.Join(lib, "os.py")); err != nil {
		return nil // no standard library beside it; leave it out
	}
	if err := b.addFile(real, "usr/bin/"+version); err != nil {
		return err
	}
	if err := os.Symlink(version, filepath.Join(b.root, "usr/bin/python3")); err != nil {
		return err
	}
	return filepath.WalkDir(lib, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (pythonSkip[d.Name()] || strings.HasPrefix(d.Name(), "config-")) {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return b.addFile(p, strings.TrimPrefix(p, "/"))
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
