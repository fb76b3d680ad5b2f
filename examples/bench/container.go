package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/internal/testutil"
)

// containerSuite holds what the container suite's benchmarks share: a
// test stack, a Manager on a depot and the cgroup parents, all unique to
// this process (named after its pid) and removed at the end.
type containerSuite struct {
	cfg      config
	r        *report
	tmp      string // temporary directory: stack, bundles, default depot
	stack    string // root filesystem, shared read-only by paaskit and the peers
	m        *container.Manager
	pid      int
	cgParent string // cgroup parent of paaskit's containers
	ociCg    string // cgroup parent of runc's and crun's containers
}

var (
	trueSpec  = container.ProcessSpec{Path: "/bin/true"}
	sleepSpec = container.ProcessSpec{Path: "/bin/sleep", Args: []string{"1000"}}
)

// runContainerSuite measures the container lifecycle and exec on paaskit,
// runc and crun, and paaskit's behaviour with many idle containers (see
// the package doc for the figures). Everything it creates is removed
// before it returns, also on error and when ctx is cancelled.
func runContainerSuite(ctx context.Context, cfg config, r *report) (retErr error) {
	tmp, err := os.MkdirTemp("", "paaskit-bench-")
	if err != nil {
		return fmt.Errorf("container suite: %w", err)
	}
	s := &containerSuite{cfg: cfg, r: r, tmp: tmp, stack: filepath.Join(tmp, "stack"), pid: os.Getpid()}
	s.cgParent = fmt.Sprintf("/paaskit-bench-%d", s.pid)
	s.ociCg = fmt.Sprintf("/paaskit-bench-%d-oci", s.pid)
	// Deferred in reverse: close the Manager, remove the cgroup parents,
	// then the temporary directory (unless something is still mounted
	// below it, which RemoveAll would walk into).
	defer func() {
		if n := countMountsOf(tmp); n > 0 {
			retErr = errors.Join(retErr, fmt.Errorf("container suite: %d mounts left below %s; not removing it", n, tmp))
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("container suite: %w", err))
		}
	}()
	defer func() { retErr = errors.Join(retErr, removeCgroupParents(s.cgParent, s.ociCg)) }()

	r.commentf("building the test stack in %s", s.stack)
	if err := testutil.BuildStack(s.stack); err != nil {
		return fmt.Errorf("container suite: build stack: %w", err)
	}
	depot := cfg.depot
	if depot == "" {
		depot = filepath.Join(tmp, "depot")
	}
	s.m, err = container.New(depot, container.WithCgroupParent(s.cgParent))
	if err != nil {
		return fmt.Errorf("container suite: %w", err)
	}
	defer s.m.Close()

	if err := s.lifecycle(ctx); err != nil {
		return err
	}
	if err := s.exec(ctx); err != nil {
		return err
	}
	if err := s.secureVsPlain(ctx); err != nil {
		return err
	}
	if err := s.network(ctx); err != nil {
		return err
	}
	for _, name := range []string{"runc", "crun"} {
		if err := s.peer(ctx, name); err != nil {
			return err
		}
	}
	r.addMaybe("container.lifecycle.vs_runc", ratio(r.value("container.lifecycle.p50"), r.value("container.lifecycle.runc.p50")), "ratio")
	r.addMaybe("container.lifecycle.vs_crun", ratio(r.value("container.lifecycle.p50"), r.value("container.lifecycle.crun.p50")), "ratio")
	r.addMaybe("container.exec.vs_runc_exec", ratio(r.value("container.exec.p50"), r.value("container.exec.runc.p50")), "ratio")
	r.addMaybe("container.exec.vs_crun_exec", ratio(r.value("container.exec.p50"), r.value("container.exec.crun.p50")), "ratio")
	return s.scaleTest(ctx)
}

// handle returns a container handle unique to this process.
func (s *containerSuite) handle(kind string, i int) string {
	return fmt.Sprintf("bench-%d-%s-%d", s.pid, kind, i)
}

// timeN calls f once to warm up, then n times, and records the p50 and
// p90 of the n durations, in ms, as <name>.p50 and <name>.p90.
func (s *containerSuite) timeN(ctx context.Context, name string, f func(i int) (time.Duration, error)) error {
	samples := make([]float64, 0, s.cfg.n)
	for i := 0; i <= s.cfg.n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := f(i)
		if err != nil {
			return fmt.Errorf("%s: iteration %d: %w", name, i, err)
		}
		if i > 0 { // 0 is the warm-up
			samples = append(samples, float64(d)/float64(time.Millisecond))
		}
	}
	for _, p := range []float64{50, 90} {
		v, err := percentile(samples, p)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s.r.add(fmt.Sprintf("%s.p%d", name, int(p)), v, "ms")
	}
	return nil
}

// lifecycle times Create, Run /bin/true, Wait, Destroy.
func (s *containerSuite) lifecycle(ctx context.Context) error {
	s.r.commentf("paaskit lifecycle, %d iterations", s.cfg.n)
	return s.timeN(ctx, "container.lifecycle", func(i int) (_ time.Duration, retErr error) {
		start := time.Now()
		c, err := s.m.Create(ctx, container.Spec{Handle: s.handle("lc", i), RootFS: s.stack})
		if err != nil {
			return 0, err
		}
		destroyed := false
		defer func() {
			if !destroyed {
				retErr = errors.Join(retErr, destroy(ctx, c))
			}
		}()
		if err := runTrue(ctx, c); err != nil {
			return 0, err
		}
		destroyed = true
		if err := c.Destroy(ctx); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	})
}

// secureVsPlain times the lifecycle without the security profile
// (no seccomp filter, no_new_privs unset) and compares it with the
// default one measured by lifecycle.
func (s *containerSuite) secureVsPlain(ctx context.Context) error {
	s.r.commentf("paaskit lifecycle without the security profile, %d iterations", s.cfg.n)
	plain := container.SecurityProfile{Seccomp: container.SeccompUnconfined(), AllowNewPrivileges: true}
	err := s.timeN(ctx, "container.lifecycle_plain", func(i int) (time.Duration, error) {
		start := time.Now()
		c, err := s.m.Create(ctx, container.Spec{Handle: s.handle("plain", i), RootFS: s.stack, Security: plain})
		if err != nil {
			return 0, err
		}
		if err := runTrue(ctx, c); err != nil {
			return 0, errors.Join(err, destroy(ctx, c))
		}
		if err := c.Destroy(ctx); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	})
	if err != nil {
		return err
	}
	s.r.addMaybe("container.lifecycle_secure.vs_plain", ratio(s.r.value("container.lifecycle.p50"), s.r.value("container.lifecycle_plain.p50")), "ratio")
	return nil
}

// exec times Run /bin/true and Wait in one running container.
func (s *containerSuite) exec(ctx context.Context) (retErr error) {
	s.r.commentf("paaskit exec, %d iterations", s.cfg.n)
	c, err := s.m.Create(ctx, container.Spec{Handle: s.handle("exec", 0), RootFS: s.stack})
	if err != nil {
		return fmt.Errorf("container.exec: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, destroy(ctx, c)) }()
	return s.timeN(ctx, "container.exec", func(int) (time.Duration, error) {
		start := time.Now()
		if err := runTrue(ctx, c); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	})
}

// runTrue runs /bin/true in c and waits for it to exit 0.
func runTrue(ctx context.Context, c *container.Container) error {
	p, err := c.Run(ctx, trueSpec, container.ProcessIO{})
	if err != nil {
		return err
	}
	code, err := p.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait %s: %w", p.ID(), err)
	}
	if code != 0 {
		return fmt.Errorf("/bin/true exited %d", code)
	}
	return nil
}

// destroy destroys c, also when ctx is cancelled; a container already
// gone is no error.
func destroy(ctx context.Context, c *container.Container) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := c.Destroy(ctx); err != nil && !errors.Is(err, container.ErrNotFound) {
		return err
	}
	return nil
}

// scaleTest creates cfg.scale containers each running sleep 1000, records
// how long the first and the last Create took and the mean PSS of their
// agents, destroys them and counts what is left of them.
func (s *containerSuite) scaleTest(ctx context.Context) (retErr error) {
	s.r.commentf("scale: creating %d containers", s.cfg.scale)
	var cs []*container.Container
	defer func() {
		for _, c := range cs {
			retErr = errors.Join(retErr, destroy(ctx, c))
		}
	}()
	// With the image quota backend every container gets a disk limit, so
	// that the quota report below reads 200 file systems.
	var limits container.Limits
	if b, _ := s.m.QuotaBackend(); b == container.QuotaImage {
		limits.DiskBytes = 16 << 20
	}
	var creates []float64
	for i := range s.cfg.scale {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		c, err := s.m.Create(ctx, container.Spec{Handle: s.handle("scale", i), RootFS: s.stack, Limits: limits})
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("scale: container %d: %w", i+1, err)
		}
		cs = append(cs, c)
		creates = append(creates, float64(d)/float64(time.Millisecond))
		if _, err := c.Run(ctx, sleepSpec, container.ProcessIO{}); err != nil {
			return fmt.Errorf("scale: container %d: %w", i+1, err)
		}
		if (i+1)%50 == 0 {
			s.r.commentf("scale: %d/%d created", i+1, s.cfg.scale)
		}
	}
	// The median of the first and of the last ten creates (or fewer).
	k := min(10, len(creates))
	first, err := percentile(creates[:k], 50)
	if err != nil {
		return err
	}
	last, err := percentile(creates[len(creates)-k:], 50)
	if err != nil {
		return err
	}
	s.r.add("container.scale.first_create", first, "ms")
	s.r.add("container.scale.last_create", last, "ms")
	s.r.add("container.scale.last_vs_first", last/first, "ratio")

	// Reports over all of them.
	n := len(cs)
	if err := s.timeN(ctx, fmt.Sprintf("container.quota_report_%d", n), func(int) (time.Duration, error) {
		start := time.Now()
		rep, err := s.m.QuotaReport(ctx)
		if err == nil && len(rep) != n {
			err = fmt.Errorf("quota report of %d containers, want %d", len(rep), n)
		}
		return time.Since(start), err
	}); err != nil {
		return err
	}
	if err := s.timeN(ctx, fmt.Sprintf("container.bulk_metrics_%d", n), func(int) (time.Duration, error) {
		start := time.Now()
		res, err := s.m.BulkMetrics(ctx, nil)
		if err == nil && len(res) != n {
			err = fmt.Errorf("metrics of %d containers, want %d", len(res), n)
		}
		return time.Since(start), err
	}); err != nil {
		return err
	}

	var totalKB int64
	for _, c := range cs {
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		kb, err := agentPSS(info.AgentPID)
		if err != nil {
			return fmt.Errorf("scale: container %s: %w", c.Handle(), err)
		}
		totalKB += kb
	}
	s.r.add("container.idle_pss_per_container", float64(totalKB)/float64(len(cs))/1024, "MiB")

	s.r.commentf("scale: destroying %d containers", len(cs))
	for len(cs) > 0 {
		if err := destroy(ctx, cs[0]); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
		cs = cs[1:]
	}
	s.r.add("container.scale.leftovers", float64(s.leftovers()), "count")
	return nil
}

// agentPSS returns the proportional set size of process pid, in kB.
func agentPSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("agent pss: %w", err)
	}
	defer f.Close()
	kb, err := parsePSS(f)
	if err != nil {
		return 0, fmt.Errorf("agent pss: %s: %w", f.Name(), err)
	}
	return kb, nil
}

// parsePSS reads the "Pss:" line of a smaps_rollup file, in kB.
func parsePSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "Pss:" {
			return strconv.ParseInt(fields[1], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no Pss line")
}

// leftovers counts, after every container was destroyed, the mounts that
// mention the depot, the cgroups left below the Manager's cgroup parent
// and the directories left in the depot's containers/, and says what they
// are in comments.
func (s *containerSuite) leftovers() int {
	n := countMountsOf(s.m.Depot())
	if n > 0 {
		s.r.commentf("leftover: %d mounts mention %s", n, s.m.Depot())
	}
	for _, dir := range cgroupDirs(s.cgParent) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			// The Manager's spare agent has a cgroup of its own until
			// the Manager closes: not a leftover of the containers.
			if e.IsDir() && !strings.Contains(e.Name(), "-spare-") {
				s.r.commentf("leftover: cgroup %s", filepath.Join(dir, e.Name()))
				n++
			}
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.m.Depot(), "containers"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.r.commentf("leftover: %v", err)
		n++
	}
	for _, e := range ents {
		s.r.commentf("leftover: depot entry %s", e.Name())
		n++
	}
	return n
}

// countMountsOf returns the number of lines of /proc/self/mountinfo that
// mention path (-1 when it cannot be read).
func countMountsOf(path string) int {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return -1
	}
	defer f.Close()
	n, err := countLinesContaining(f, path)
	if err != nil {
		return -1
	}
	return n
}

// countLinesContaining returns the number of lines of r that contain s.
func countLinesContaining(r io.Reader, s string) (int, error) {
	n := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n, sc.Err()
}

// cgroupDirs returns the directories of the cgroup at absolute path cg in
// every hierarchy mounted below /sys/fs/cgroup (cgroup v1 and hybrid: one
// per controller; v2: the unified one) that exist.
func cgroupDirs(cg string) []string {
	candidates, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cg))
	candidates = append(candidates, filepath.Join("/sys/fs/cgroup", cg))
	var dirs []string
	seen := map[string]bool{} // cpu may be a link to cpu,cpuacct
	for _, d := range candidates {
		real, err := filepath.EvalSymlinks(d)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if fi, err := os.Stat(real); err == nil && fi.IsDir() {
			dirs = append(dirs, real)
		}
	}
	return dirs
}

// removeCgroupParents removes the (empty) cgroup parents in every
// hierarchy. A parent that still has children is an error.
func removeCgroupParents(parents ...string) error {
	var errs []error
	for _, p := range parents {
		for _, d := range cgroupDirs(p) {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup parent: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
