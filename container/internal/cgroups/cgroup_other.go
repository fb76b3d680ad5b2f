//go:build !linux

package cgroups

import (
	"errors"
	"fmt"
	"os"
)

func errUnsupported(op string) error {
	return fmt.Errorf("cgroups: %s: cgroups need Linux: %w", op, errors.ErrUnsupported)
}

func newCgroup(config, string, Resources) (*Cgroup, error) { return nil, errUnsupported("create") }
func loadCgroup(config, string) (*Cgroup, error)           { return nil, errUnsupported("load") }
func (c *Cgroup) add(int) error                            { return errUnsupported("add") }
func (c *Cgroup) update(Resources) error                   { return errUnsupported("update") }
func (c *Cgroup) procs() ([]int, error)                    { return nil, errUnsupported("procs") }
func (c *Cgroup) stats() (*Stats, error)                   { return nil, errUnsupported("stats") }
func (c *Cgroup) oomKillCount() (uint64, error)            { return 0, errUnsupported("oom_kill") }
func (c *Cgroup) kill() error                              { return errUnsupported("kill") }
func (c *Cgroup) delete() error                            { return errUnsupported("delete") }
func (c *Cgroup) cgroupFD() (*os.File, error)              { return nil, errUnsupported("cgroup fd") }
func (c *Cgroup) watchOOM() (*OOMWatcher, error)           { return nil, errUnsupported("watch oom") }

// Children lists the cgroups below parent; it needs Linux.
func Children(parent string) ([]string, error) { return nil, errUnsupported("children") }
