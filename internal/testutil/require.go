package testutil

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run in continuous integration (the CI
// environment variable is set to anything but "" or "false"). In CI a
// missing requirement fails the test instead of skipping it.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Unmet skips t with "needs <need>", or fails it when [InCI] is true. It is
// the one place that decides between the two, for the Require* helpers and
// for tests with needs of their own.
func Unmet(t testing.TB, need string) {
	t.Helper()
	if InCI() {
		t.Fatalf("needs %s (CI is set, so this is a failure, not a skip)", need)
	}
	t.Skipf("needs %s", need)
}

// RequireRoot skips t unless the test runs as root (effective uid 0); in CI
// it fails t instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unmet(t, "root (effective uid 0) for real namespaces, mounts and cgroups")
	}
}

// RequireOverlay skips (or, in CI, fails) t unless the kernel offers
// overlayfs, as listed in /proc/filesystems.
func RequireOverlay(t testing.TB) {
	t.Helper()
	if !hasFilesystem("overlay") {
		Unmet(t, "overlayfs in the kernel (/proc/filesystems lists no overlay)")
	}
}

// RequireUserNS skips (or, in CI, fails) t unless unprivileged user
// namespaces can be created (/proc/sys/user/max_user_namespaces > 0).
func RequireUserNS(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil || strings.TrimSpace(string(b)) == "0" {
		Unmet(t, "user namespaces (/proc/sys/user/max_user_namespaces is 0 or missing)")
	}
}

// RequireCgroupV1Controller skips (or, in CI, fails) t unless the named
// cgroup v1 controller (memory, cpu, pids, …) is mounted.
func RequireCgroupV1Controller(t testing.TB, controller string) {
	t.Helper()
	if _, ok := cgroupV1Mounts()[controller]; !ok {
		Unmet(t, "the cgroup v1 "+controller+" controller mounted")
	}
}

// RequireCgroupV2 skips (or, in CI, fails) t unless /sys/fs/cgroup is a
// cgroup v2 unified hierarchy.
func RequireCgroupV2(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		Unmet(t, "a cgroup v2 unified hierarchy at /sys/fs/cgroup")
	}
}

// RequireCommand skips (or, in CI, fails) t unless the named program is
// on PATH.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unmet(t, "the "+name+" program on PATH")
	}
	return p
}

func hasFilesystem(name string) bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 0 && fields[len(fields)-1] == name {
			return true
		}
	}
	return false
}

var cgroupV1Mounts = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// … mountpoint … - fstype source superopts
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(qf[2], ",") {
			m[opt] = pf[4]
		}
	}
	return m
})
