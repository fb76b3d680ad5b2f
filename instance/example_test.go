package instance_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/instance"
	"github.com/paaskit/paaskit/instance/instancetest"
)

// Run an instance on fakes: create, start, watch its transitions, stop.
func Example() {
	base, _ := os.MkdirTemp("", "dea")
	defer os.RemoveAll(base)
	droplets := instancetest.NewDroplets(base + "/droplets")
	tgz, _ := instancetest.NewDroplet(map[string]string{
		"staging_info.yml": "start_command: ./web\n",
		"app/web":          "#!/bin/sh\n",
	})
	sha := droplets.Add(tgz)

	m, err := instance.New(instance.Config{
		BaseDir:    base,
		Containers: instancetest.NewContainers(), // instance.NewContainerBackend(containerManager) for real
		Droplets:   droplets,
		Stacks:     map[string]string{"cflinuxfs": "/var/lib/stacks/cflinuxfs"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	// This is where a DEA registers routes, publishes heartbeats and
	// droplet.exited.
	m.Listen(func(e instance.Event) {
		if e.Kind == instance.EventEntering {
			fmt.Println("entering", e.To)
		}
	})

	inst, err := m.Create(instance.Spec{
		ApplicationID: "9d0c5ea8-app", ApplicationName: "web", InstanceIndex: 0,
		DropletSHA1: sha, Limits: instance.Limits{Mem: 256, Disk: 1024, FDs: 16384},
		HealthCheck: instance.HealthCheck{Type: instance.HealthCheckProcess},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx, inst); err != nil {
		log.Fatal(err)
	}
	if err := m.Stop(ctx, inst); err != nil {
		log.Fatal(err)
	}
	m.Flush(ctx)
	fmt.Println("reserved memory:", m.Resources().ReservedMemory(), "MB")
	// Output:
	// entering STARTING
	// entering RUNNING
	// entering STOPPING
	// entering STOPPED
	// entering DELETED
	// reserved memory: 0 MB
}

// A crash: the description says why, and the logs are kept.
func ExampleManager_Start_crash() {
	base, _ := os.MkdirTemp("", "dea")
	defer os.RemoveAll(base)
	containers := instancetest.NewContainers()
	droplets := instancetest.NewDroplets(base + "/droplets")
	tgz, _ := instancetest.NewDroplet(map[string]string{"staging_info.yml": "start_command: ./web\n"})
	m, _ := instance.New(instance.Config{
		BaseDir: base, Containers: containers, Droplets: droplets,
		Stacks: map[string]string{"cflinuxfs": "/stacks/cflinuxfs"},
	})
	defer m.Close()
	// The app is killed for memory as soon as it runs.
	containers.SetOnRun(func(_ *instancetest.Container, p *instancetest.Process) { p.OOM() })

	inst, _ := m.Create(instance.Spec{
		ApplicationID: "app", DropletSHA1: droplets.Add(tgz), Limits: instance.Limits{Mem: 64},
		HealthCheck: instance.HealthCheck{Type: instance.HealthCheckPort},
	})
	err := m.Start(context.Background(), inst)
	var se *instance.StartError
	if errors.As(err, &se) {
		fmt.Println("start failed:", se.Description)
	}
	a := inst.Attributes()
	fmt.Println(a.State, a.ExitStatus, a.ExitDescription)
	// Output:
	// start failed: out of memory
	// CRASHED 137 out of memory
}

// After a restart, a new Manager on the same base directory resumes the
// instances of the snapshot by re-linking to their processes.
func ExampleManager_Resume() {
	base, _ := os.MkdirTemp("", "dea")
	defer os.RemoveAll(base)
	containers := instancetest.NewContainers() // outlive the Managers, as containers do
	droplets := instancetest.NewDroplets(base + "/droplets")
	tgz, _ := instancetest.NewDroplet(map[string]string{"staging_info.yml": "start_command: ./web\n"})
	cfg := instance.Config{
		BaseDir: base, Containers: containers, Droplets: droplets,
		Stacks: map[string]string{"cflinuxfs": "/stacks/cflinuxfs"},
	}
	ctx := context.Background()

	first, _ := instance.New(cfg)
	inst, _ := first.Create(instance.Spec{ApplicationID: "app", DropletSHA1: droplets.Add(tgz), Limits: instance.Limits{Mem: 64}})
	first.Start(ctx, inst)
	pid := inst.Attributes().ProcessPID
	first.Close() // or the process dies: the snapshot is written on every change

	second, _ := instance.New(cfg)
	defer second.Close()
	resumed, err := second.Resume(ctx)
	if err != nil {
		log.Fatal(err)
	}
	a := resumed[0].Attributes()
	fmt.Println(a.InstanceID == inst.ID(), a.State, a.ProcessPID == pid)
	// Output:
	// true RUNNING true
}

// Select instances as a dea.stop message does.
func ExampleRegistry_Find() {
	r := instance.NewRegistry()
	for i := range 4 {
		inst, _ := instance.NewInstance(instance.Spec{
			ApplicationID: "app", ApplicationVersion: "v1", InstanceIndex: i, InstanceID: fmt.Sprint("i", i),
			DropletSHA1: "0123456789abcdef0123456789abcdef01234567", Limits: instance.Limits{Mem: 128},
		})
		r.Register(inst)
	}
	// {droplet, version, indices}: scale down to two instances.
	for _, inst := range r.Find(instance.Filter{Droplet: "app", Version: "v1", Indices: []int{2, 3}}) {
		fmt.Println(inst.ID())
	}
	fmt.Println(r.AppIDToCount())
	// Output:
	// i2
	// i3
	// map[app:4]
}

// Diego's crash backoff.
func ExampleRestartPolicy_Delay() {
	p := instance.DiegoRestartPolicy()
	for _, n := range []int{1, 3, 4, 5, 9, 200, 201} {
		d, ok := p.Delay(n)
		fmt.Println(n, d, ok)
	}
	// Output:
	// 1 0s true
	// 3 0s true
	// 4 30s true
	// 5 1m0s true
	// 9 16m0s true
	// 200 16m0s true
	// 201 0s false
}

// The state machine is data; an illegal transition is a typed error.
func ExampleCheckTransition() {
	fmt.Println(instance.StateRunning.Next())
	err := instance.CheckTransition(instance.StateCrashed, instance.StateRunning)
	var te *instance.TransitionError
	if errors.As(err, &te) {
		fmt.Println(te.From, "->", te.To, errors.Is(err, instance.ErrIllegalTransition))
	}
	// Output:
	// [STOPPING CRASHED EVACUATING]
	// CRASHED -> RUNNING true
}

// Capacity, overcommit and what an advertisement says.
func ExampleResourceManager() {
	r := instance.NewRegistry()
	rm, _ := instance.NewResourceManager(r, instance.ResourceConfig{MemoryMB: 4096, MemoryOvercommitFactor: 2, DiskMB: 32000})
	rm.ReserveStaging(instance.StagingReservation{TaskID: "stage-1", MemoryMB: 1024, DiskMB: 4096})
	s := rm.Snapshot()
	fmt.Println(s.MemoryCapacity, s.RemainingMemory, s.RemainingDisk)
	fmt.Println(rm.CanReserve(8000, 1024), rm.ConstrainedResource(8000, 1024))
	fmt.Println(rm.NumberReservable(512, 1024))
	// Output:
	// 8192 7168 27904
	// false memory
	// 14
}

// With real containers (Linux, root): wrap a container.Manager.
func ExampleNewContainerBackend() {
	if container.Init() { // first thing in main: the container agent
		return
	}
	cm, err := container.New("/var/lib/dea/depot", container.WithNetwork(container.NetworkConfig{}))
	if err != nil {
		log.Fatal(err)
	}
	defer cm.Close()
	m, err := instance.New(instance.Config{
		BaseDir:    "/var/lib/dea",
		Containers: instance.NewContainerBackend(cm),
		Droplets:   nil, // a droplet.Registry, or any instance.DropletSource
		Stacks:     map[string]string{"cflinuxfs": "/var/lib/dea/stacks/cflinuxfs.tgz"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Resume(context.Background()); err != nil {
		log.Print(err)
	}
}
