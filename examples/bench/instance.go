package main

// The instance suite measures package instance itself, with the fake
// container backend of instance/instancetest (so the figures are the
// package's, not the containers'):
//
//   - instance.filter_10000.p50 / .p90: Registry.Find with a dea.stop-like
//     message on a registry of 10,000 instances (100 apps × 100);
//   - instance.snapshot_10000.write (p50) and .bytes: writing
//     instances.json atomically with 10,000 instances;
//   - instance.resume_10000: a new Manager resuming the 10,000 from the
//     snapshot (re-linking to the fake containers).
//
// Then, when run as root on Linux, with real containers and package
// droplet's Registry: 100 instances of one droplet, served by an HTTP blob
// store, started concurrently (instance.start_100_real, the time until all
// are RUNNING; instance.start_100_real.downloads, the blob store's hits,
// which must be 1) by a child process that is then killed with SIGKILL; a new Manager in this process resumes
// them (instance.resume_100_real), and the suite counts those RUNNING with
// the same process as before (instance.resume_100_real.same_pids, which
// must be 100). Everything is stopped and removed at the end.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/instance"
	"github.com/paaskit/paaskit/instance/instancetest"
	"github.com/paaskit/paaskit/internal/testutil"
)

// instanceOwnerEnv, when set in the environment, makes the instance suite
// run as the owner process of the real-container part (see
// runInstanceOwner); its value is the JSON of an instanceOwnerConfig.
const instanceOwnerEnv = "PAASKIT_BENCH_INSTANCE_OWNER"

const (
	instanceFakeApps    = 100
	instanceFakePerApp  = 100
	instanceRealCount   = 100
	instanceRealTimeout = 5 * time.Minute
)

func runInstanceSuite(ctx context.Context, cfg config, r *report) error {
	if v := os.Getenv(instanceOwnerEnv); v != "" {
		return runInstanceOwner(ctx, v)
	}
	if err := instanceFakeFigures(ctx, cfg, r); err != nil {
		return fmt.Errorf("instance suite: %w", err)
	}
	if os.Geteuid() != 0 {
		r.addNA("instance.start_100_real", "ms", "instance", errors.New("real containers need root"))
		return nil
	}
	if err := instanceRealFigures(ctx, r); err != nil {
		return fmt.Errorf("instance suite: real containers: %w", err)
	}
	return nil
}

// instanceFakeFigures measures the registry, the snapshot and resume
// with 10,000 instances on fakes.
func instanceFakeFigures(ctx context.Context, cfg config, r *report) error {
	tmp, err := os.MkdirTemp("", "paaskit-bench-instance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	containers := instancetest.NewContainers()
	containers.SetRecording(false)
	droplets := instancetest.NewDroplets(filepath.Join(tmp, "droplets"))
	tgz, err := instancetest.NewDroplet(map[string]string{"staging_info.yml": "start_command: ./web\n", "app/web": "#!/bin/sh\n"})
	if err != nil {
		return err
	}
	sha := droplets.Add(tgz)
	icfg := instance.Config{
		BaseDir: filepath.Join(tmp, "base"), Containers: containers, Droplets: droplets,
		Stacks: map[string]string{"fake": "/stacks/fake"},
	}
	opts := []instance.Option{
		instance.WithReapers(instance.ReaperConfig{}),
		instance.WithResources(instance.ResourceConfig{MemoryMB: 1 << 30, DiskMB: 1 << 30}),
		instance.WithLocalIP("10.0.0.1"),
	}
	m, err := instance.New(icfg, opts...)
	if err != nil {
		return err
	}
	defer func() { m.Close() }()

	total := instanceFakeApps * instanceFakePerApp
	r.commentf("starting %d instances on fakes", total)
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 64)
	for app := range instanceFakeApps {
		for idx := range instanceFakePerApp {
			spec := instance.Spec{
				ApplicationID: fmt.Sprintf("app-%03d", app), ApplicationName: "bench", ApplicationVersion: fmt.Sprintf("v%d", idx%3),
				InstanceIndex: idx, DropletSHA1: sha, DropletURI: "http://cc/droplets/x",
				ApplicationURIs: []string{fmt.Sprintf("app-%03d.example.com", app)},
				Limits:          instance.Limits{Mem: 256, Disk: 1024, FDs: 16384},
				Environment:     map[string]string{"RAILS_ENV": "production", "CF_PROCESS_TYPE": "web"},
				HealthCheck:     instance.HealthCheck{Type: instance.HealthCheckProcess},
			}
			inst, err := m.Create(spec)
			if err != nil {
				return err
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := m.Start(ctx, inst); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			})
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	r.commentf("%d instances RUNNING on fakes in %v", len(m.Registry().ByState(instance.StateRunning)), time.Since(began).Round(time.Millisecond))

	// Filter by message.
	iters := max(cfg.n, 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	var samples []float64
	for i := range iters {
		f := instance.Filter{Droplet: fmt.Sprintf("app-%03d", rng.IntN(instanceFakeApps))}
		switch i % 4 {
		case 0: // stop an app
		case 1: // scale down
			f.Version, f.Indices = "v1", []int{rng.IntN(instanceFakePerApp), rng.IntN(instanceFakePerApp)}
		case 2: // find running
			f.States = []instance.State{instance.StateRunning}
		case 3: // stop given instances
			f.Instances = []string{"nope", "also-nope"}
		}
		t := time.Now()
		_ = m.Registry().Find(f)
		samples = append(samples, msSince(t))
	}
	addPercentiles(r, "instance.filter_10000", samples)

	// Snapshot writes.
	samples = samples[:0]
	for range cfg.n {
		t := time.Now()
		if err := m.SaveSnapshot(ctx); err != nil {
			return err
		}
		samples = append(samples, msSince(t))
	}
	p50, _ := percentile(samples, 50)
	r.add("instance.snapshot_10000.write", p50, "ms")
	if fi, err := os.Stat(m.SnapshotPath()); err == nil {
		r.add("instance.snapshot_10000.bytes", float64(fi.Size()), "count")
	}

	// Resume: a new Manager on the same base and fakes.
	if err := m.Close(); err != nil {
		return err
	}
	m2, err := instance.New(icfg, opts...)
	if err != nil {
		return err
	}
	defer m2.Close()
	t := time.Now()
	insts, err := m2.Resume(ctx)
	if err != nil {
		return err
	}
	r.add("instance.resume_10000", msSince(t), "ms")
	if n := len(m2.Registry().ByState(instance.StateRunning)); n != total || len(insts) != total {
		return fmt.Errorf("resumed %d instances, %d RUNNING, want %d", len(insts), n, total)
	}
	return nil
}

func addPercentiles(r *report, name string, samples []float64) {
	p50, err := percentile(samples, 50)
	if err != nil {
		r.addNA(name+".p50", "ms", name, err)
		return
	}
	p90, _ := percentile(samples, 90)
	r.add(name+".p50", p50, "ms")
	r.add(name+".p90", p90, "ms")
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / 1e6 }

// instanceOwnerConfig is what the owner process is told.
type instanceOwnerConfig struct {
	Base, Stack, Droplets string
	Shards                []containerShard
	Count                 int
}

// containerShard is one container Manager of the real-container part:
// package container handles at most about 20 networked containers per
// Manager today (with more, its nftables update fails with ENOBUFS), so
// the 100 instances are spread over several Managers, each with its own
// depot, bridge, subnet and port pool, behind one instance.Containers.
type containerShard struct {
	Depot   string
	Network container.NetworkConfig
}

const instancePerShard = 20

// shardedContainers is an instance.Containers over several container
// Managers: Create goes round-robin, Lookup asks each.
type shardedContainers struct {
	ms   []*container.Manager
	bs   []*instance.ContainerBackend
	mu   sync.Mutex
	next int
}

func (s *shardedContainers) Create(ctx context.Context, spec container.Spec) (instance.Container, error) {
	s.mu.Lock()
	b := s.bs[s.next%len(s.bs)]
	s.next++
	s.mu.Unlock()
	return b.Create(ctx, spec)
}

func (s *shardedContainers) Lookup(ctx context.Context, handle string) (instance.Container, error) {
	for _, b := range s.bs {
		if c, err := b.Lookup(ctx, handle); err == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("container %q: %w", handle, container.ErrNotFound)
}

func (s *shardedContainers) List(ctx context.Context, filter map[string]string) ([]string, error) {
	var out []string
	for _, b := range s.bs {
		hs, err := b.List(ctx, filter)
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	return out, nil
}

// lookup finds a container in any shard.
func (s *shardedContainers) lookup(handle string) (*container.Container, error) {
	for _, m := range s.ms {
		if c, err := m.Lookup(handle); err == nil {
			return c, nil
		}
	}
	return nil, container.ErrNotFound
}

// destroyAll destroys every container of every shard.
func (s *shardedContainers) destroyAll(ctx context.Context) error {
	var errs []error
	for _, m := range s.ms {
		cs, _ := m.List(ctx, nil)
		for _, c := range cs {
			errs = append(errs, c.Destroy(ctx))
		}
	}
	return errors.Join(errs...)
}

func (s *shardedContainers) close() error {
	var errs []error
	for _, m := range s.ms {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// openShards opens (or re-opens) the container Managers of c.
func (c instanceOwnerConfig) openShards() (*shardedContainers, error) {
	s := &shardedContainers{}
	for _, sh := range c.Shards {
		m, err := container.New(sh.Depot, container.WithNetwork(sh.Network), container.WithStopTimeout(2*time.Second))
		if err != nil {
			s.close()
			return nil, err
		}
		s.ms = append(s.ms, m)
		s.bs = append(s.bs, instance.NewContainerBackend(m))
	}
	return s, nil
}

// instanceOwnerReport is the owner's one line on stdout once every
// instance is RUNNING.
type instanceOwnerReport struct {
	StartMS   float64        `json:"start_ms"`
	Downloads int            `json:"downloads"`
	Running   int            `json:"running"`
	PIDs      map[string]int `json:"pids"` // instance id → pid in its container
	Error     string         `json:"error,omitempty"`
}

// managers opens the container shards, the droplet registry and an
// instance Manager on them.
func (c instanceOwnerConfig) managers() (*shardedContainers, *instance.Manager, *droplet.Registry, error) {
	cs, err := c.openShards()
	if err != nil {
		return nil, nil, nil, err
	}
	reg, err := droplet.OpenRegistry(c.Droplets)
	if err != nil {
		cs.close()
		return nil, nil, nil, err
	}
	m, err := instance.New(instance.Config{
		BaseDir: c.Base, Containers: cs, Droplets: instance.NewDropletRegistry(reg),
		Stacks: map[string]string{"bench": c.Stack},
	}, instance.WithReapers(instance.ReaperConfig{}), instance.WithHealthCheckTimeout(3*time.Minute))
	if err != nil {
		reg.Close()
		cs.close()
		return nil, nil, nil, err
	}
	return cs, m, reg, nil
}

// runInstanceOwner is the child process: it starts the instances, reports
// and waits to be killed.
func runInstanceOwner(ctx context.Context, raw string) error {
	var c instanceOwnerConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return err
	}
	rep := instanceOwnerReport{PIDs: map[string]int{}}
	err := func() error {
		_, m, _, err := c.managers()
		if err != nil {
			return err
		}
		tgz, err := instancetest.AppDroplet()
		if err != nil {
			return err
		}
		sum := sha1.Sum(tgz)
		sha := hex.EncodeToString(sum[:])
		// The blob store: one droplet, served slowly enough that every
		// start asks for it while it downloads.
		var downloads atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			downloads.Add(1)
			time.Sleep(200 * time.Millisecond)
			w.Write(tgz)
		}))
		defer srv.Close()
		insts := make([]*instance.Instance, c.Count)
		for i := range insts {
			insts[i], err = m.Create(instance.Spec{
				ApplicationID: "bench-app", ApplicationName: "bench", InstanceIndex: i,
				ApplicationURIs: []string{"bench.example.com"},
				DropletSHA1:     sha, DropletURI: srv.URL + "/droplets/" + sha,
				Limits:      instance.Limits{Mem: 64, Disk: 256, FDs: 1024},
				HealthCheck: instance.HealthCheck{Type: instance.HealthCheckHTTP},
			})
			if err != nil {
				return err
			}
		}
		sctx, cancel := context.WithTimeout(ctx, instanceRealTimeout)
		defer cancel()
		began := time.Now()
		errs := make([]error, len(insts))
		var wg sync.WaitGroup
		for i, inst := range insts {
			wg.Go(func() { errs[i] = m.Start(sctx, inst) })
		}
		wg.Wait()
		rep.StartMS = msSince(began)
		rep.Downloads = int(downloads.Load())
		for _, inst := range insts {
			if a := inst.Attributes(); a.State == instance.StateRunning {
				rep.Running++
				rep.PIDs[a.InstanceID] = a.ProcessPID
			}
		}
		if err := errors.Join(errs...); err != nil {
			rep.Error = err.Error()
		}
		return m.SaveSnapshot(ctx)
	}()
	if err != nil {
		rep.Error = strings.TrimSpace(rep.Error + "\n" + err.Error())
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	<-ctx.Done() // killed by the parent
	return nil
}

// instanceRealFigures runs the real-container part.
func instanceRealFigures(ctx context.Context, r *report) (retErr error) {
	tmp, err := os.MkdirTemp("", "paaskit-bench-instance-real-")
	if err != nil {
		return err
	}
	pid := os.Getpid()
	c := instanceOwnerConfig{
		Base: filepath.Join(tmp, "base"), Stack: filepath.Join(tmp, "stack"),
		Droplets: filepath.Join(tmp, "droplets"), Count: instanceRealCount,
	}
	for i := range (instanceRealCount + instancePerShard - 1) / instancePerShard {
		c.Shards = append(c.Shards, containerShard{
			Depot: filepath.Join(tmp, fmt.Sprintf("depot%d", i)),
			Network: container.NetworkConfig{
				Bridge:    fmt.Sprintf("pkbi%d-%d", pid%100000, i),
				Subnet:    netip.MustParsePrefix(fmt.Sprintf("10.252.%d.0/24", i)),
				HostPorts: [2]uint16{uint16(62000 + i*100), uint16(62000 + i*100 + 99)},
			},
		})
	}
	var cm *shardedContainers
	var m *instance.Manager
	var reg *droplet.Registry
	defer func() {
		// Everything goes, also on error: the instances, every container
		// of the depot, the directories.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if m != nil {
			if err := m.Shutdown(cctx); err != nil {
				retErr = errors.Join(retErr, err)
			}
		}
		if reg != nil {
			retErr = errors.Join(retErr, reg.Close())
		}
		if cm == nil {
			cm, _ = c.openShards()
		}
		if cm != nil {
			retErr = errors.Join(retErr, cm.destroyAll(cctx), cm.close())
		}
		retErr = errors.Join(retErr, os.RemoveAll(tmp))
	}()

	r.commentf("building the test stack in %s", c.Stack)
	if err := testutil.BuildStack(c.Stack); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.Stack, "usr/bin/python3")); err != nil {
		r.addNA("instance.start_100_real", "ms", "instance", errors.New("the app needs python3 on the host"))
		return nil
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "-suite", "instance")
	cmd.Env = append(os.Environ(), instanceOwnerEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	r.commentf("starting %d real instances of one droplet in a child process", c.Count)
	if err := cmd.Start(); err != nil {
		return err
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("owner process: %w", err)
	}
	var rep instanceOwnerReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		return fmt.Errorf("owner process said %q: %w", line, err)
	}
	r.add("instance.start_100_real", rep.StartMS, "ms")
	r.add("instance.start_100_real.running", float64(rep.Running), "count")
	r.add("instance.start_100_real.downloads", float64(rep.Downloads), "count")
	var startErr error
	if rep.Error != "" {
		startErr = fmt.Errorf("owner process: %s", rep.Error)
		r.commentf("%v", startErr)
		if rep.Running == 0 {
			return startErr
		}
	}

	// kill -9 the owner, then resume in this process.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	cmd.Wait()
	killed = true
	began := time.Now()
	cm, m, reg, err = c.managers()
	if err != nil {
		return err
	}
	insts, err := m.Resume(ctx)
	resumeMS := msSince(began)
	if err != nil {
		return err
	}
	r.add("instance.resume_100_real", resumeMS, "ms")
	same, running := 0, 0
	for _, inst := range insts {
		a := inst.Attributes()
		if a.State != instance.StateRunning {
			continue
		}
		running++
		ct, err := cm.lookup(a.WardenHandle)
		if err != nil {
			continue
		}
		info, err := ct.Info(ctx)
		if err != nil {
			continue
		}
		if p, ok := rep.PIDs[a.InstanceID]; ok && p == a.ProcessPID && slices.Equal(info.ProcessIDs, []string{instance.ProcessID}) {
			same++
		}
	}
	r.add("instance.resume_100_real.running", float64(running), "count")
	r.add("instance.resume_100_real.same_pids", float64(same), "count")
	r.commentf("resumed %d instances in %s ms", running, strconv.FormatFloat(resumeMS, 'f', 1, 64))
	if same != rep.Running {
		return errors.Join(startErr, fmt.Errorf("%d of the %d instances RUNNING before the kill resumed with their process (%d RUNNING)", same, rep.Running, running))
	}
	return startErr
}
