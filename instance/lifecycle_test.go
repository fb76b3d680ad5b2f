package instance_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/instance"
	"github.com/paaskit/paaskit/instance/instancetest"
	"github.com/paaskit/paaskit/internal/archive"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestStartReachesRunningWithEachHealthCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   instance.HealthCheck
		uris []string
	}{
		{"port", instance.HealthCheck{Type: instance.HealthCheckPort}, nil},
		{"default with uris is port", instance.HealthCheck{}, []string{"web.example.com"}},
		{"http", instance.HealthCheck{Type: instance.HealthCheckHTTP, HTTPEndpoint: "/health"}, nil},
		{"process", instance.HealthCheck{Type: instance.HealthCheckProcess}, nil},
		{"default without uris is process", instance.HealthCheck{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.hc.Type != instance.HealthCheckProcess && (tc.hc.Type != "" || len(tc.uris) > 0) {
				e.c.SetHandler(okHandler)
			}
			inst := e.start(t, e.spec(func(s *instance.Spec) { s.HealthCheck = tc.hc; s.ApplicationURIs = tc.uris }))
			a := inst.Attributes()
			assert.Equal(t, instance.StateRunning, a.State)
			assert.NotZero(t, a.InstanceHostPort)
			assert.Equal(t, a.InstanceHostPort, a.InstanceContainerPort)
			assert.Equal(t, instance.ProcessID, a.WardenJobID)
			assert.NotZero(t, a.ProcessPID)
			assert.False(t, a.StateStartingTimestamp.IsZero())
			assert.False(t, a.StateRunningTimestamp.IsZero())
		})
	}
}

func TestStartCreatesTheContainerAsDEADid(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec(func(s *instance.Spec) {
		s.Limits = instance.Limits{Mem: 4096, Disk: 2048, FDs: 5000}
		s.InstanceIndex = 3
		s.Environment = map[string]string{"GREETING": "hi", "PORT": "overridden-by-user"}
		s.EgressRules = []container.NetOutRule{{Network: "10.1.0.0/16", Protocol: container.ProtocolTCP}}
		s.Services = []instance.Service{{Name: "db", Label: "postgresql", Credentials: map[string]any{"uri": "postgresql://u:p@db:5432/x"}}}
	}))
	a := inst.Attributes()
	c := e.c.Container(a.WardenHandle)
	require.NotNil(t, c)
	spec := c.Spec()
	assert.Equal(t, "/stacks/cflinuxfs", spec.RootFS)
	assert.Equal(t, int64(4096)<<20, spec.Limits.MemoryBytes)
	assert.Equal(t, uint64(256), spec.Limits.CPUShares, "4096/8 clamped to 256")
	assert.Equal(t, int64(instance.DefaultNprocLimit), spec.Limits.PidsMax)
	require.NotEmpty(t, spec.BindMounts)
	assert.Equal(t, instance.HomeDir, spec.BindMounts[0].DstPath)
	assert.Equal(t, a.InstancePath, spec.BindMounts[0].SrcPath)
	assert.Equal(t, map[string]string{instance.PropertyOwner: instance.OwnerInstance, instance.PropertyInstance: a.InstanceID, instance.PropertyApp: "app-1"}, spec.Properties)
	assert.Len(t, c.NetOutRules(), 1)

	// The droplet was extracted on the host into the bind-mounted home.
	b, err := os.ReadFile(filepath.Join(a.InstancePath, "app", "web"))
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/sh\n", string(b))
	assert.DirExists(t, filepath.Join(a.InstancePath, "tmp"))

	p := c.Process(instance.ProcessID)
	ps := p.Spec()
	assert.Equal(t, "/bin/bash", ps.Path)
	assert.Equal(t, "vcap", ps.User)
	assert.Equal(t, "./web --port $PORT", ps.Args[len(ps.Args)-1])
	require.NotNil(t, ps.Limits.Nofile)
	assert.Equal(t, uint64(5000), *ps.Limits.Nofile)

	env := p.Env()
	port := strings.TrimSpace(env["VCAP_APP_PORT"])
	assert.Equal(t, itoa(a.InstanceContainerPort), port)
	assert.Equal(t, "overridden-by-user", env["PORT"], "the app's environment wins")
	assert.Equal(t, "hi", env["GREETING"])
	assert.Equal(t, "4096m", env["MEMORY_LIMIT"])
	assert.Equal(t, "/home/vcap/app", env["HOME"])
	assert.Equal(t, "/home/vcap/tmp", env["TMPDIR"])
	assert.Equal(t, "0.0.0.0", env["VCAP_APP_HOST"])
	assert.Equal(t, "3", env["CF_INSTANCE_INDEX"])
	assert.Equal(t, "10.0.0.5", env["CF_INSTANCE_IP"])
	assert.Equal(t, "10.0.0.5:"+itoa(a.InstanceHostPort), env["CF_INSTANCE_ADDR"])
	assert.JSONEq(t, `[{"external":`+itoa(a.InstanceHostPort)+`,"internal":`+itoa(a.InstanceContainerPort)+`}]`, env["CF_INSTANCE_PORTS"])
	assert.Equal(t, "postgres://u:p@db:5432/x", env["DATABASE_URL"])
	var vs map[string][]map[string]any
	require.NoError(t, json.Unmarshal([]byte(env["VCAP_SERVICES"]), &vs))
	assert.Equal(t, "db", vs["postgresql"][0]["name"])
	var va map[string]any
	require.NoError(t, json.Unmarshal([]byte(env["VCAP_APPLICATION"]), &va))
	for _, k := range []string{"application_id", "instance_id", "instance_index", "host", "port", "started_at", "started_at_timestamp", "start", "state_timestamp", "limits", "application_name", "application_uris", "application_version"} {
		assert.Contains(t, va, k)
	}
	assert.Equal(t, a.InstanceID, va["instance_id"])
	assert.Equal(t, float64(3), va["instance_index"])
}

func TestListenersSeeEveryTransitionInOrder(t *testing.T) {
	e := newEnv(t)
	r := record(e.m)
	// Routes first: when STOPPING is entered, the app has had no TERM.
	var termedBeforeUnregister bool
	var mu sync.Mutex
	e.m.Listen(func(ev instance.Event) {
		if ev.Kind == instance.EventEntering && ev.To == instance.StateStopping {
			c := e.c.Container(ev.Attributes.WardenHandle)
			mu.Lock()
			termedBeforeUnregister = c.Process(instance.ProcessID).Exited()
			mu.Unlock()
		}
	})
	inst := e.start(t, e.spec())
	id := inst.ID()
	require.NoError(t, e.m.Stop(t.Context(), inst))
	flush(t, e.m)
	assert.Equal(t, transitions("BORN", "STARTING", "RUNNING", "STOPPING", "STOPPED", "DELETED"), r.strings(id))
	mu.Lock()
	assert.False(t, termedBeforeUnregister, "the process got TERM before the listeners saw STOPPING")
	mu.Unlock()
	assert.Equal(t, instance.StateDeleted, inst.State())
	_, err := e.m.Registry().Lookup(id)
	assert.ErrorIs(t, err, instance.ErrNotFound)
	ops := e.c.Ops(inst.Attributes().WardenHandle)
	assert.Equal(t, []string{"stop", "destroy"}, ops[len(ops)-2:])
	assert.NoDirExists(t, filepath.Join(e.base, "instances", id))
}

func TestReadinessTimeoutCrashes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		inst, err := e.m.Create(e.spec(func(s *instance.Spec) { s.HealthCheck.Type = instance.HealthCheckPort }))
		require.NoError(t, err)
		began := time.Now()
		err = e.m.Start(t.Context(), inst) // nothing listens
		se, ok := errors.AsType[*instance.StartError](err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, instance.DescHealthTimeout, se.Description)
		assert.ErrorIs(t, err, instance.ErrStartFailed)
		assert.Equal(t, instance.DefaultHealthCheckTimeout, time.Since(began).Round(time.Second))
		a := inst.Attributes()
		assert.Equal(t, instance.StateCrashed, a.State)
		assert.Equal(t, instance.DescHealthTimeout, a.ExitDescription)
		assert.True(t, e.c.Container(a.WardenHandle).Destroyed())
		require.NoError(t, e.m.Close())
	})
}

func TestHealthCheckTimeoutFromTheStartMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		inst, err := e.m.Create(e.spec(func(s *instance.Spec) {
			s.HealthCheck.Type = instance.HealthCheckPort
			s.HealthCheckTimeout = 5
		}))
		require.NoError(t, err)
		began := time.Now()
		require.Error(t, e.m.Start(t.Context(), inst))
		assert.Equal(t, 5*time.Second, time.Since(began).Round(time.Second))
		require.NoError(t, e.m.Close())
	})
}

func TestHTTPHealthCheckWantsA2xx(t *testing.T) {
	e := newEnv(t)
	e.c.SetHandler(okHandler)
	inst, err := e.m.Create(e.spec(func(s *instance.Spec) {
		s.HealthCheck = instance.HealthCheck{Type: instance.HealthCheckHTTP, HTTPEndpoint: "/fail", Timeout: instance.Duration(300 * time.Millisecond)}
	}))
	require.NoError(t, err)
	err = e.m.Start(t.Context(), inst)
	se, ok := errors.AsType[*instance.StartError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, instance.DescHTTPHealthTimeout, se.Description)
	assert.Contains(t, err.Error(), "500")
	assert.Equal(t, instance.StateCrashed, inst.State())
}

func TestLivenessFailureCrashes(t *testing.T) {
	e := newEnv(t)
	var healthy atomic.Bool
	healthy.Store(true)
	e.c.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	}))
	r := record(e.m)
	inst := e.start(t, e.spec(func(s *instance.Spec) {
		s.HealthCheck = instance.HealthCheck{Type: instance.HealthCheckHTTP, LivenessInterval: instance.Duration(10 * time.Millisecond), LivenessThreshold: 3}
	}))
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, instance.StateRunning, inst.State(), "passing liveness checks")
	// The app stops answering well; its process lives on.
	healthy.Store(false)
	waitState(t, inst, instance.StateCrashed)
	a := inst.Attributes()
	assert.Contains(t, a.ExitDescription, instance.DescLivenessFailed)
	assert.Contains(t, a.ExitDescription, "3 times in a row")
	assert.Contains(t, a.ExitDescription, "503")
	assert.True(t, e.c.Container(a.WardenHandle).Destroyed())
	flush(t, e.m)
	assert.Equal(t, []instance.State{instance.StateStarting, instance.StateRunning, instance.StateCrashed}, r.entering())
}

func TestProcessExitCrashesAndKeepsLogs(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	a := inst.Attributes()
	home := a.InstancePath
	p := e.proc(t, inst)
	p.Write("hello from the app\n", "oops\n")
	before := e.m.Resources().Snapshot()
	p.Exit(3)
	waitState(t, inst, instance.StateCrashed)
	a = inst.Attributes()
	assert.Equal(t, 3, a.ExitStatus)
	assert.Equal(t, instance.DescExited, a.ExitDescription)
	assert.Equal(t, filepath.Join(e.base, "crashes", a.InstanceID), a.InstancePath)
	b, err := os.ReadFile(filepath.Join(a.InstancePath, "stdout.log"))
	require.NoError(t, err)
	assert.Equal(t, "hello from the app\n", string(b))
	b, err = os.ReadFile(filepath.Join(a.InstancePath, "stderr.log"))
	require.NoError(t, err)
	assert.Equal(t, "oops\n", string(b))
	b, err = os.ReadFile(filepath.Join(a.InstancePath, "logs", "app.log"))
	require.NoError(t, err, "the app's logs/ are kept")
	assert.Equal(t, "booted\n", string(b))
	assert.NoDirExists(t, home)
	assert.True(t, e.c.Container(a.WardenHandle).Destroyed())
	// CRASHED holds disk, not memory.
	after := e.m.Resources().Snapshot()
	assert.Equal(t, before.ReservedMemory-256, after.ReservedMemory)
	assert.Equal(t, before.ReservedDisk, after.ReservedDisk)
	assert.Equal(t, 1, a.CrashCount)
}

func TestOutOfMemory(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	e.proc(t, inst).OOM()
	waitState(t, inst, instance.StateCrashed)
	a := inst.Attributes()
	assert.Equal(t, instance.DescOutOfMemory, a.ExitDescription)
	assert.Equal(t, 137, a.ExitStatus)
}

func TestProcessDyingWhileStarting(t *testing.T) {
	e := newEnv(t)
	e.c.SetOnRun(func(_ *instancetest.Container, p *instancetest.Process) { p.Exit(2) })
	inst, err := e.m.Create(e.spec(func(s *instance.Spec) { s.HealthCheck.Type = instance.HealthCheckPort }))
	require.NoError(t, err)
	err = e.m.Start(t.Context(), inst)
	se, ok := errors.AsType[*instance.StartError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, instance.DescExited, se.Description)
	a := inst.Attributes()
	assert.Equal(t, instance.StateCrashed, a.State)
	assert.Equal(t, 2, a.ExitStatus)
}

func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env) instance.Spec
		desc  string
		cause error
	}{
		{"missing start command", func(e *env) instance.Spec {
			b, _ := instancetest.NewDroplet(map[string]string{"app/web": "x"})
			sha := e.d.Add(b)
			return e.spec(func(s *instance.Spec) { s.DropletSHA1 = sha })
		}, instance.DescMissingCommand, nil},
		{"corrupt droplet", func(e *env) instance.Spec {
			sha := e.d.Add([]byte("\x1f\x8b\x08\x00 not really gzip"))
			return e.spec(func(s *instance.Spec) { s.DropletSHA1 = sha })
		}, instance.DescFailedToStart, archive.ErrBadArchive},
		{"droplet escaping its directory", func(e *env) instance.Spec {
			b, _ := instancetest.NewDroplet(map[string]string{"../../etc/evil": "x"})
			sha := e.d.Add(b)
			return e.spec(func(s *instance.Spec) { s.DropletSHA1 = sha })
		}, instance.DescFailedToStart, archive.ErrUnsafePath},
		{"droplet download fails", func(e *env) instance.Spec {
			e.d.Fail(e.sha, errors.New("blobstore down"))
			return e.spec()
		}, instance.DescFailedToStart, nil},
		{"container create fails", func(e *env) instance.Spec {
			e.c.FailNext("create", container.ErrPoolExhausted)
			return e.spec()
		}, instance.DescFailedToStart, container.ErrPoolExhausted},
		{"net in fails", func(e *env) instance.Spec {
			e.c.FailNext("netin", container.ErrNoNetwork)
			return e.spec()
		}, instance.DescFailedToStart, container.ErrNoNetwork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			inst, err := e.m.Create(tc.setup(e))
			require.NoError(t, err)
			err = e.m.Start(t.Context(), inst)
			se, ok := errors.AsType[*instance.StartError](err)
			require.True(t, ok, "%v", err)
			assert.Equal(t, tc.desc, se.Description)
			if tc.cause != nil {
				assert.ErrorIs(t, err, tc.cause)
			}
			assert.Equal(t, instance.StateCrashed, inst.State())
			assert.Empty(t, e.c.Live(), "no container left")
			assert.NoDirExists(t, filepath.Join(e.base, "instances", inst.ID()))
		})
	}
}

func TestConcurrentStartsShareOneDownload(t *testing.T) {
	e := newEnv(t)
	e.d.SetDelay(50 * time.Millisecond)
	var wg sync.WaitGroup
	insts := make([]*instance.Instance, 20)
	for i := range insts {
		inst, err := e.m.Create(e.spec(func(s *instance.Spec) { s.InstanceIndex = i }))
		require.NoError(t, err)
		insts[i] = inst
		wg.Go(func() { assert.NoError(t, e.m.Start(context.Background(), inst)) })
	}
	wg.Wait()
	for _, inst := range insts {
		assert.Equal(t, instance.StateRunning, inst.State())
	}
	assert.Equal(t, 1, e.d.Downloads(e.sha))
	assert.Equal(t, int64(1), e.m.DropletFetches())
}

func TestNotEnoughResources(t *testing.T) {
	e := newEnv(t, instance.WithResources(instance.ResourceConfig{MemoryMB: 1024, DiskMB: 10000}))
	r := record(e.m)
	for range 4 {
		_, err := e.m.Create(e.spec())
		require.NoError(t, err)
	}
	inst, err := e.m.Create(e.spec())
	re, ok := errors.AsType[*instance.ResourceError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "memory", re.Resource)
	assert.ErrorIs(t, err, instance.ErrInsufficientResources)
	require.NotNil(t, inst, "registered so that the controller sees the crash")
	a := inst.Attributes()
	assert.Equal(t, instance.StateCrashed, a.State)
	assert.Equal(t, "Not enough memory resource available.", a.ExitDescription)
	flush(t, e.m)
	assert.Equal(t, transitions("BORN", "CRASHED"), r.strings(a.InstanceID))

	_, err = e.m.Create(e.spec(func(s *instance.Spec) { s.Limits = instance.Limits{Mem: 1, Disk: 100000} }))
	re, ok = errors.AsType[*instance.ResourceError](err)
	require.True(t, ok)
	assert.Equal(t, "disk", re.Resource, "disk is checked first")
}

func TestStopWhileStarting(t *testing.T) {
	e := newEnv(t)
	inst, err := e.m.Create(e.spec(func(s *instance.Spec) { s.HealthCheck.Type = instance.HealthCheckPort }))
	require.NoError(t, err)
	done := make(chan error)
	go func() { done <- e.m.Start(context.Background(), inst) }()
	for e.c.Container(inst.Attributes().WardenHandle) == nil || e.c.Container(inst.Attributes().WardenHandle).Process(instance.ProcessID) == nil {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, e.m.Stop(t.Context(), inst))
	err = <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, instance.StateDeleted, inst.State())
	assert.Empty(t, e.c.Live())
}

func TestStopBornAndIllegalStops(t *testing.T) {
	e := newEnv(t)
	inst, err := e.m.Create(e.spec())
	require.NoError(t, err)
	require.NoError(t, e.m.Stop(t.Context(), inst))
	assert.Equal(t, instance.StateDeleted, inst.State())
	err = e.m.Stop(t.Context(), inst)
	te, ok := errors.AsType[*instance.TransitionError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, instance.StateDeleted, te.From)
	err = e.m.Start(t.Context(), inst)
	assert.ErrorIs(t, err, instance.ErrIllegalTransition)
}

func TestStuckStoppingIsRetriedByTheReaper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := instance.ReaperConfig{StoppingInterval: 10 * time.Second, StoppingTimeout: 60 * time.Second}
		e := newEnv(t, instance.WithReapers(cfg), instance.WithStopTimeout(30*time.Second))
		inst := e.start(t, e.spec())
		e.c.SetHangStop(true)
		err := e.m.Stop(t.Context(), inst)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, instance.StateStopping, inst.State(), "left STOPPING for the reaper")
		e.c.SetHangStop(false)
		// Stop gave up at 30 s; the passes at 40, 50 and 60 s find it
		// STOPPING for no more than 60 s, the one at 70 s retries.
		time.Sleep(35 * time.Second)
		assert.Equal(t, instance.StateStopping, inst.State())
		time.Sleep(10 * time.Second)
		synctest.Wait()
		assert.Equal(t, instance.StateDeleted, inst.State())
		require.NoError(t, e.m.Close())
	})
}

func TestRestartPolicyRestartsWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, instance.WithRestartPolicy(instance.DiegoRestartPolicy()))
		var mu sync.Mutex
		var starts []time.Duration
		began := time.Now()
		e.m.Listen(func(ev instance.Event) {
			if ev.Kind != instance.EventEntering {
				return
			}
			switch ev.To {
			case instance.StateStarting:
				mu.Lock()
				starts = append(starts, time.Since(began))
				mu.Unlock()
			case instance.StateRunning:
				// Crash as soon as it runs.
				e.c.Container(ev.Attributes.WardenHandle).Process(instance.ProcessID).Exit(1)
			}
		})
		inst, err := e.m.Create(e.spec())
		require.NoError(t, err)
		require.NoError(t, e.m.Start(t.Context(), inst))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		mu.Lock()
		assert.Equal(t, []time.Duration{0, 0, 0, 0, 30 * time.Second, 90 * time.Second}, starts)
		mu.Unlock()
		crashed := e.m.Registry().ByState(instance.StateCrashed)
		require.Len(t, crashed, 6)
		counts := []int{}
		for _, c := range crashed {
			counts = append(counts, c.Attributes().CrashCount)
		}
		assert.ElementsMatch(t, []int{1, 2, 3, 4, 5, 6}, counts)
		assert.Equal(t, 1, e.m.PendingRestarts(), "the 7th start waits 2 min")
		require.NoError(t, e.m.Close())
	})
}

func TestEvacuateAndCanShutdown(t *testing.T) {
	e := newEnv(t)
	a := e.start(t, e.spec())
	b := e.start(t, e.spec(func(s *instance.Spec) { s.InstanceIndex = 1 }))
	assert.False(t, e.m.CanShutdown())
	assert.Len(t, e.m.Evacuate(), 2)
	assert.Equal(t, instance.StateEvacuating, a.State())
	require.NoError(t, e.m.Stop(t.Context(), a))
	assert.False(t, e.m.CanShutdown())
	e.proc(t, b).Exit(1)
	waitState(t, b, instance.StateCrashed)
	assert.True(t, e.m.CanShutdown())
}

func TestUpdateChangesURIsAndIDOnNewVersion(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	oldID := inst.ID()
	before := e.m.Update("app-1", []string{"new.example.com"}, "v1")
	require.Len(t, before, 1)
	assert.Equal(t, oldID, inst.ID(), "same version, same id")
	assert.Equal(t, []string{"new.example.com"}, inst.Attributes().ApplicationURIs)
	e.m.Update("app-1", []string{"new.example.com"}, "v2")
	assert.NotEqual(t, oldID, inst.ID())
	got, err := e.m.Registry().Lookup(inst.ID())
	require.NoError(t, err)
	assert.Same(t, inst, got)
	_, err = e.m.Registry().Lookup(oldID)
	assert.ErrorIs(t, err, instance.ErrNotFound)
	assert.Len(t, e.m.Registry().Find(instance.Filter{Droplet: "app-1", Version: "v2"}), 1)
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec(func(s *instance.Spec) { s.ApplicationURIs = []string{"a.example.com"} }))
	c := e.c.Container(inst.Attributes().WardenHandle)
	c.SetUsage(container.MemoryStat{Total: container.MemoryCounters{RSS: 100 << 20, Cache: 20 << 20, InactiveFile: 10 << 20}}, container.CPUStat{Usage: 0})
	_, err := e.m.Stats(t.Context(), inst)
	require.NoError(t, err)
	c.SetUsage(container.MemoryStat{Total: container.MemoryCounters{RSS: 100 << 20, Cache: 20 << 20, InactiveFile: 10 << 20}}, container.CPUStat{Usage: uint64(time.Hour)})
	st, err := e.m.Stats(t.Context(), inst)
	require.NoError(t, err)
	assert.Equal(t, int64(110<<20), st.Usage.Mem)
	assert.Positive(t, st.Usage.CPU)
	assert.Positive(t, st.Usage.Disk, "the extracted droplet")
	assert.Equal(t, int64(256<<20), st.MemQuota)
	assert.Equal(t, int64(1024<<20), st.DiskQuota)
	assert.Equal(t, "10.0.0.5", st.Host)
	assert.Equal(t, []string{"a.example.com"}, st.URIs)
	assert.Positive(t, st.Uptime)

	e.proc(t, inst).Exit(0)
	waitState(t, inst, instance.StateCrashed)
	_, err = e.m.Stats(t.Context(), inst)
	assert.ErrorIs(t, err, instance.ErrNotFound)
}

func TestClosedManager(t *testing.T) {
	e := newEnv(t)
	inst := e.start(t, e.spec())
	require.NoError(t, e.m.Close())
	require.NoError(t, e.m.Close(), "idempotent")
	_, err := e.m.Create(e.spec())
	assert.ErrorIs(t, err, instance.ErrClosed)
	assert.ErrorIs(t, e.m.Stop(t.Context(), inst), instance.ErrClosed)
	assert.False(t, e.proc(t, inst).Exited(), "Close leaves instances running")
}

func TestInvalidSpecs(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		field string
		mod   func(*instance.Spec)
	}{
		{"ApplicationID", func(s *instance.Spec) { s.ApplicationID = "" }},
		{"DropletSHA1", func(s *instance.Spec) { s.DropletSHA1 = "abc" }},
		{"Limits.Mem", func(s *instance.Spec) { s.Limits.Mem = 0 }},
		{"InstanceIndex", func(s *instance.Spec) { s.InstanceIndex = -1 }},
		{"InstanceID", func(s *instance.Spec) { s.InstanceID = "../x" }},
		{"HealthCheck.Type", func(s *instance.Spec) { s.HealthCheck.Type = "tcp" }},
		{"Stack", func(s *instance.Spec) { s.Stack = "windows" }},
	} {
		_, err := e.m.Create(e.spec(tc.mod))
		se, ok := errors.AsType[*instance.SpecError](err)
		if assert.True(t, ok, "%s: %v", tc.field, err) {
			assert.Equal(t, tc.field, se.Field)
			assert.ErrorIs(t, err, instance.ErrInvalidSpec)
		}
	}
	_, err := instance.New(instance.Config{BaseDir: t.TempDir()})
	assert.ErrorIs(t, err, instance.ErrInvalidSpec)
}

// TestNoGoroutineLeft runs a Manager through starts, a crash, a stop, a
// liveness check and Close, and checks that nothing of it is left.
func TestNoGoroutineLeft(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newEnv(t, instance.WithReapers(instance.DefaultReaperConfig()), instance.WithRestartPolicy(instance.RestartPolicy{Enabled: true, BaseDelay: time.Hour, ImmediateRestarts: 1}))
	r := record(e.m)
	a := e.start(t, e.spec(func(s *instance.Spec) { s.HealthCheck.LivenessInterval = instance.Duration(time.Millisecond) }))
	b := e.start(t, e.spec(func(s *instance.Spec) { s.InstanceIndex = 1 }))
	e.proc(t, b).Exit(1)
	waitState(t, b, instance.StateCrashed)
	require.NoError(t, e.m.Stop(t.Context(), a))
	require.NoError(t, e.m.Close())
	assert.NotEmpty(t, r.entering())
}
