package cgroups_test

import (
	"fmt"
	"log"
	"os/exec"

	"github.com/paaskit/paaskit/container/internal/cgroups"
)

// A container's life in its cgroup: create with limits, move the first
// process in, watch for OOM kills, read the accounting, kill and remove.
// It needs root, so it has no Output and is only compiled.
func Example() {
	cg, err := cgroups.New("/paaskit/example", cgroups.Resources{
		MemoryLimit: 256 << 20,
		CPUShares:   512,
		PidsMax:     1024,
		Devices:     true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := cg.Kill(); err != nil {
			log.Print(err)
		}
		if err := cg.Delete(); err != nil {
			log.Print(err)
		}
	}()

	oom, err := cg.WatchOOM()
	if err != nil {
		log.Fatal(err)
	}
	defer oom.Close()

	cmd := exec.Command("sleep", "1")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	if err := cg.Add(cmd.Process.Pid); err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	select {
	case n := <-oom.C():
		fmt.Println("OOM kills so far:", n)
	case err := <-done:
		fmt.Println("exited:", err)
	}
	stats, err := cg.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("memory used: %d of %d bytes, CPU: %d ns\n",
		stats.Memory.Usage, stats.Memory.Limit, stats.CPU.UsageNS)
}
