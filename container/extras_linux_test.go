package container_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/containertest"
	"github.com/paaskit/paaskit/internal/archive"
	"github.com/paaskit/paaskit/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiskLimitWithImageBackend(t *testing.T) {
	testutil.RequireCommand(t, "mkfs.ext4")
	m := newManager(t, container.WithQuota(container.QuotaImage))
	b, _ := m.QuotaBackend()
	require.Equal(t, container.QuotaImage, b)
	c := newContainer(t, m, container.Spec{Limits: container.Limits{DiskBytes: 32 << 20, DiskInodes: 1000}})

	r := run(t, c, sh("dd if=/dev/zero of=/tmp/big bs=1M count=64 2>&1; echo dd=$?"))
	assert.Contains(t, r.stdout, "No space left on device")
	assert.NotContains(t, r.stdout, "dd=0")
	mt, err := c.Metrics(t.Context())
	require.NoError(t, err)
	assert.Equal(t, container.QuotaImage, mt.Disk.Backend)
	assert.Equal(t, uint64(32<<20), mt.Disk.LimitBytes)
	assert.Greater(t, mt.Disk.Bytes, uint64(20<<20), "usage of the full disk")
	assert.LessOrEqual(t, mt.Disk.Bytes, uint64(32<<20))

	// The container still works, and space comes back.
	r = run(t, c, sh("rm /tmp/big && echo fine"))
	assert.Equal(t, "fine\n", r.stdout)
	mt, err = c.Metrics(t.Context())
	require.NoError(t, err)
	assert.Less(t, mt.Disk.Bytes, uint64(1<<20))

	// Inodes run out too.
	r = run(t, c, sh("mkdir /tmp/many && cd /tmp/many && i=0; while [ $i -lt 1500 ]; do printf '' > f$i 2>/dev/null || break; i=$((i+1)); done; echo made $i"))
	made, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(r.stdout, "made ")))
	require.NoError(t, err, r.stdout)
	assert.Less(t, made, 1000)
	assert.Greater(t, made, 900)
	run(t, c, sh("rm -rf /tmp/many"))

	// Growing works online where the kernel lets this process resize a
	// file system; shrinking and changing inodes are refused.
	want := int64(32 << 20)
	if err := c.SetDiskLimit(t.Context(), 96<<20, 1000); hasCapSysResource(t) {
		require.NoError(t, err)
		want = 96 << 20
		r = run(t, c, sh("dd if=/dev/zero of=/tmp/big bs=1M count=64 2>/dev/null; echo dd=$?"))
		assert.Equal(t, "dd=0\n", r.stdout)
	} else {
		require.ErrorContains(t, err, "CAP_SYS_RESOURCE")
	}
	var se *container.SpecError
	assert.ErrorAs(t, c.SetDiskLimit(t.Context(), 20<<20, 1000), &se)
	assert.ErrorAs(t, c.SetDiskLimit(t.Context(), uint64(want), 5000), &se)
	assert.Equal(t, want, c.Limits().DiskBytes)
	mt, err = c.Metrics(t.Context())
	require.NoError(t, err)
	assert.Equal(t, uint64(want), mt.Disk.LimitBytes)

	// The image is sparse on the host: its size is the limit, its blocks
	// what was written.
	st := mustStat(t, filepath.Join(c.Path(), "disk.img"))
	assert.Equal(t, want, st.Size())
	assert.Less(t, st.Sys().(*syscall.Stat_t).Blocks*512, want)
}

// hasCapSysResource reports whether this process may raise resource
// limits (root lacks it on some hosts, this project's among them).
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			require.NoError(t, err)
			return caps&(1<<24) != 0
		}
	}
	return false
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi
}

func TestKernelQuotaStepsAsideWithAReason(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := container.New(t.TempDir())
	require.NoError(t, err)
	defer m.Close()
	b, reasons := m.QuotaBackend()
	if b == container.QuotaKernel {
		t.Skip("this host has project quotas: nothing steps aside") // not this machine's case
	}
	require.NotEmpty(t, reasons)
	assert.True(t, strings.HasPrefix(reasons[0], "kernel: "), reasons[0])
	_, err = container.New(t.TempDir(), container.WithQuota(container.QuotaKernel))
	assert.ErrorIs(t, err, errors.ErrUnsupported)
}

func TestScannerUsageMatchesDu(t *testing.T) {
	m := newManager(t, container.WithQuota(container.QuotaScanner))
	c := newContainer(t, m, container.Spec{})
	r := run(t, c, sh("mkdir -p /data/a /data/b && head -c 3000000 /dev/urandom > /data/a/x && head -c 12345 /dev/urandom > /data/b/y && ln /data/a/x /data/hard && for i in $(seq 50); do echo $i > /data/b/f$i; done"))
	require.Equal(t, 0, r.code, r.stderr)
	mt, err := c.Metrics(t.Context())
	require.NoError(t, err)
	assert.Equal(t, container.QuotaScanner, mt.Disk.Backend)
	out, err := exec.Command("du", "-s", "--block-size=1", filepath.Join(c.Path(), "upper")).Output()
	require.NoError(t, err)
	du, err := strconv.ParseUint(strings.Fields(string(out))[0], 10, 64)
	require.NoError(t, err)
	assert.InEpsilon(t, float64(du), float64(mt.Disk.Bytes), 0.05, "scanner %d, du %d", mt.Disk.Bytes, du)
}

func TestQuotaReportListsEveryContainer(t *testing.T) {
	testutil.RequireCommand(t, "mkfs.ext4")
	m := newManager(t, container.WithQuota(container.QuotaImage))
	a := newContainer(t, m, container.Spec{Limits: container.Limits{DiskBytes: 16 << 20}})
	b := newContainer(t, m, container.Spec{})
	run(t, a, sh("head -c 2000000 /dev/zero > /tmp/f"))
	report, err := m.QuotaReport(t.Context())
	require.NoError(t, err)
	require.Len(t, report, 2)
	byHandle := map[string]container.QuotaEntry{}
	for _, e := range report {
		require.NoError(t, e.Err)
		byHandle[e.Handle] = e
	}
	assert.Equal(t, uint64(16<<20), byHandle[a.Handle()].LimitBytes)
	assert.GreaterOrEqual(t, byHandle[a.Handle()].Bytes, uint64(2000000))
	assert.Equal(t, container.QuotaImage, byHandle[a.Handle()].Backend)
	assert.Equal(t, container.QuotaScanner, byHandle[b.Handle()].Backend)
	assert.Zero(t, byHandle[b.Handle()].LimitBytes)
}

func TestTerminal(t *testing.T) {
	depot := t.TempDir()
	testutil.RequireRoot(t)
	m, err := container.New(depot)
	require.NoError(t, err)
	c := containertest.NewContainer(t, m, container.Spec{})
	t.Cleanup(func() { m.Close() })
	in, inW := io.Pipe()
	var out syncBuffer
	p, err := c.Run(t.Context(), container.ProcessSpec{ID: "tty", Path: "/bin/sh", Args: []string{"-c", "stty size; tty; echo ready; read x; stty size; echo got $x"}, TTY: &container.TTYSpec{Rows: 24, Columns: 80}},
		container.ProcessIO{Stdin: in, Stdout: &out})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "ready") }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, p.SetTTY(t.Context(), container.TTYSpec{Rows: 50, Columns: 132}))
	_, err = inW.Write([]byte("hello\n"))
	require.NoError(t, err)
	code, err := p.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	inW.Close()
	got := out.String()
	assert.Contains(t, got, "24 80\r\n", "initial size, with the terminal's CR LF")
	assert.Regexp(t, `/dev/pts/[0-9]+\r\n`, got, "a terminal of the container's own devpts")
	assert.Contains(t, got, "50 132\r\n", "resized")
	assert.Contains(t, got, "got hello\r\n")

	// Re-attachable, with all of it, from a new Manager.
	require.NoError(t, m.Close())
	m2, err := container.New(depot)
	require.NoError(t, err)
	t.Cleanup(func() { m2.Close() })
	c2, err := m2.Lookup(c.Handle())
	require.NoError(t, err)
	var again bytes.Buffer
	p2, err := c2.Attach(t.Context(), "tty", container.ProcessIO{Stdout: &again})
	require.NoError(t, err)
	_, err = p2.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, got, again.String())
	require.NoError(t, c2.Destroy(t.Context()))

	// Resizing a process without a terminal is refused.
	c3 := newContainer(t, m2, container.Spec{})
	p3, err := c3.Run(t.Context(), container.ProcessSpec{Path: "/bin/sleep", Args: []string{"10"}}, container.ProcessIO{})
	require.NoError(t, err)
	assert.ErrorIs(t, p3.SetTTY(t.Context(), container.TTYSpec{Rows: 1, Columns: 1}), container.ErrInvalidSpec)
}

// tarOf builds a tar stream from entries.
func tarOf(t *testing.T, entries ...*tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if body != "" {
			_, err := tw.Write([]byte(body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return &buf
}

func TestStreamInAndOut(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	in := tarOf(t,
		&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o750},
		&tar.Header{Name: "app/run.sh", Typeflag: tar.TypeReg, Mode: 0o755},
		&tar.Header{Name: "app/héllo wörld.txt", Typeflag: tar.TypeReg, Mode: 0o640},
		&tar.Header{Name: "app/link", Typeflag: tar.TypeSymlink, Linkname: "run.sh"},
	)
	require.NoError(t, c.StreamIn(t.Context(), "/srv/data", "vcap", in))
	r := run(t, c, sh("cd /srv/data/app && stat -c '%U %a %n' . run.sh 'héllo wörld.txt' && readlink link && cat 'héllo wörld.txt'"))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "vcap 750 .\nvcap 755 run.sh\nvcap 640 héllo wörld.txt\nrun.sh\ncontent of app/héllo wörld.txt", r.stdout)

	// A streamed-in file that is executable runs.
	script := tarOf(t, &tar.Header{Name: "hi", Typeflag: tar.TypeReg, Mode: 0o755})
	_ = script
	exe := new(bytes.Buffer)
	tw := tar.NewWriter(exe)
	body := "#!/bin/sh\necho streamed and run\n"
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "hi", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))}))
	tw.Write([]byte(body))
	tw.Close()
	require.NoError(t, c.StreamIn(t.Context(), "/usr/local/bin", "", exe))
	r = run(t, c, container.ProcessSpec{Path: "hi"})
	assert.Equal(t, "streamed and run\n", r.stdout)

	// Out: the tree comes back under its base name, link as link.
	rc, err := c.StreamOut(t.Context(), "/srv/data/app")
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got[h.Name] = h
	}
	require.Contains(t, got, "app/run.sh")
	assert.Equal(t, int64(0o755), got["app/run.sh"].Mode&0o777)
	require.Contains(t, got, "app/link")
	assert.Equal(t, byte(tar.TypeSymlink), got["app/link"].Typeflag)
	assert.Contains(t, got, "app/héllo wörld.txt")

	_, err = c.StreamOut(t.Context(), "/no/such/path")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestStreamInRefusesHostileArchives(t *testing.T) {
	m := newManager(t)
	c := newContainer(t, m, container.Spec{})
	marker := "pk-escape-" + strconv.Itoa(os.Getpid())
	// A link inside the container that points at the host's / if it were
	// followed from the host.
	r := run(t, c, sh("ln -s / /hostroot && ln -s /etc /tmp/etclink"))
	require.Equal(t, 0, r.code)
	for _, tc := range []struct {
		name    string
		entries []*tar.Header
		want    error
	}{
		{"dot-dot name", []*tar.Header{{Name: "../../../../tmp/" + marker, Typeflag: tar.TypeReg, Mode: 0o644}}, archive.ErrUnsafePath},
		{"absolute name", []*tar.Header{{Name: "/tmp/" + marker, Typeflag: tar.TypeReg, Mode: 0o644}}, archive.ErrUnsafePath},
		{"symlink then file through it", []*tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
			{Name: "esc/" + marker, Typeflag: tar.TypeReg, Mode: 0o644},
		}, archive.ErrUnsafePath},
		{"hard link to a host file", []*tar.Header{{Name: "pw", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}, archive.ErrUnsafePath},
		{"device node", []*tar.Header{{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o600}}, archive.ErrNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.StreamIn(t.Context(), "/incoming", "", tarOf(t, tc.entries...))
			require.ErrorIs(t, err, tc.want)
			var ee *archive.EntryError
			assert.ErrorAs(t, err, &ee)
		})
	}
	// A destination through the container's own links stays inside.
	require.NoError(t, c.StreamIn(t.Context(), "/hostroot/tmp", "", tarOf(t, &tar.Header{Name: marker, Typeflag: tar.TypeReg, Mode: 0o644})))
	r = run(t, c, sh("cat /tmp/"+marker))
	assert.Equal(t, "content of "+marker, r.stdout)
	assert.NoFileExists(t, "/tmp/"+marker, "a stream reached the host's /tmp")
	t.Cleanup(func() { os.Remove("/tmp/" + marker) })
}

func TestLiveLimitsAndMetrics(t *testing.T) {
	testutil.RequireCgroupV1Controller(t, "memory")
	m := newManager(t)
	c := newContainer(t, m, container.Spec{Limits: container.Limits{MemoryBytes: 64 << 20, CPUShares: 512}})
	dirs := cgroupDirsOf(t, c)
	read := func(ctrl, file string) string {
		for _, d := range dirs {
			if strings.Contains(d, "/"+ctrl+"/") {
				b, err := os.ReadFile(filepath.Join(d, file))
				require.NoError(t, err)
				return strings.TrimSpace(string(b))
			}
		}
		t.Fatalf("no %s cgroup in %v", ctrl, dirs)
		return ""
	}
	assert.Equal(t, "67108864", read("memory", "memory.limit_in_bytes"))
	require.NoError(t, c.SetLimits(t.Context(), container.Limits{MemoryBytes: 128 << 20, CPUShares: 256, PidsMax: 50}))
	assert.Equal(t, "134217728", read("memory", "memory.limit_in_bytes"))
	assert.Equal(t, "256", read("cpu", "cpu.shares"))
	assert.Equal(t, "50", read("pids", "pids.max"))
	assert.Equal(t, container.Limits{MemoryBytes: 128 << 20, CPUShares: 256, PidsMax: 50}, c.Limits())
	var se *container.SpecError
	assert.ErrorAs(t, c.SetLimits(t.Context(), container.Limits{MemoryBytes: 1}), &se)

	// Metrics agree with the cgroup files.
	p, err := c.Run(t.Context(), sh("head -c 20000000 /dev/zero | tail -c 1; sleep 30"), container.ProcessIO{})
	require.NoError(t, err)
	t.Cleanup(func() { p.Signal(context.Background(), 9) })
	mt, err := c.Metrics(t.Context())
	require.NoError(t, err)
	usage, _ := strconv.ParseUint(read("memory", "memory.usage_in_bytes"), 10, 64)
	assert.InDelta(t, float64(usage), float64(mt.Memory.Usage), float64(8<<20))
	assert.Equal(t, uint64(128<<20), mt.Memory.Limit)
	assert.Positive(t, mt.CPU.Usage)
	assert.Positive(t, mt.Pids.Current)
	assert.Positive(t, mt.Age)

	other := newContainer(t, m, container.Spec{})
	bulk, err := m.BulkMetrics(t.Context(), []string{c.Handle(), other.Handle(), "nope"})
	require.NoError(t, err)
	require.Len(t, bulk, 3)
	assert.NoError(t, bulk[c.Handle()].Err)
	assert.NoError(t, bulk[other.Handle()].Err)
	assert.ErrorIs(t, bulk["nope"].Err, container.ErrNotFound)
	all, err := m.BulkMetrics(t.Context(), nil)
	require.NoError(t, err)
	assert.Len(t, all, 2)
	_ = fmt.Sprint
}
