package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Hooks let a library user add to container setup without forking the
// package, at warden's four points (its hook-parent-before-clone.sh,
// hook-parent-after-clone.sh, hook-child-before-pivot.sh and
// hook-child-after-pivot.sh) and three more on the host:
//
//	ParentBeforeClone  host, before the container's agent starts (no pid yet)
//	ParentAfterClone   host, the agent runs in its namespaces (pid known,
//	                   the container's cgroup made), nothing set up yet
//	ChildBeforePivot   in the agent, in the container's mount namespace with
//	                   the root file system and /proc, /sys, /dev mounted at
//	                   State.Rootfs, before pivot_root: extra mounts go here
//	ChildAfterPivot    in the agent, inside the container's root, before it
//	                   serves requests
//	AfterStart         host, Create is about to return
//	BeforeStop         host, Stop is about to signal the processes
//	AfterDestroy       host, everything is released
//
// Each hook has a timeout (default DefaultHookTimeout). A hook that fails
// or times out at any point up to AfterStart fails Create with a
// *HookError, and the half-made container is removed completely; a
// failing BeforeStop fails Stop; a failing AfterDestroy is returned by
// Destroy, which has released everything all the same.
//
// Host hooks are Go functions (Func) or programs (Path). Child hooks run
// in the re-executed agent, where closures of the host program do not
// exist: a Go child hook names a function registered with
// RegisterChildHook (in an init function or before Init, so that the
// agent has it too), or is a program (Path; for ChildBeforePivot a host
// path, for ChildAfterPivot a path inside the container).
//
// A program hook gets the HookState as JSON on stdin, PAASKIT_HOOK (the
// point), PAASKIT_HANDLE and PAASKIT_PID in its environment (after Env),
// and its output goes to the container's agent.log; a non-zero exit is a
// failure.
type Hooks struct {
	ParentBeforeClone, ParentAfterClone []Hook
	ChildBeforePivot, ChildAfterPivot   []Hook
	AfterStart, BeforeStop              []Hook
	AfterDestroy                        []Hook
}

// Hook is one hook: a Go function, a registered child function (Name), or
// a program (Path).
type Hook struct {
	// Name names the hook in errors; for a child Go hook it is the name
	// it was registered with (RegisterChildHook).
	Name string `json:"name"`
	// Func is a host hook's Go function.
	Func func(ctx context.Context, s HookState) error `json:"-"`
	// Path, Args and Env run a program instead.
	Path string   `json:"path,omitempty"`
	Args []string `json:"args,omitempty"`
	Env  []string `json:"env,omitempty"`
	// Timeout bounds the hook; 0 means DefaultHookTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// DefaultHookTimeout bounds a hook whose Timeout is 0.
const DefaultHookTimeout = 30 * time.Second

// HookState is what a hook learns of its container.
type HookState struct {
	Point  string `json:"point"`  // "parent-before-clone", …
	Handle string `json:"handle"` // the container's handle
	Spec   Spec   `json:"spec"`
	Pid    int    `json:"pid,omitempty"` // the agent's pid on the host, once it exists
	// Rootfs is the container's root: on the host, the overlay's mount
	// point (mounted only in the container's mount namespace); in
	// ChildBeforePivot, where it is mounted; in ChildAfterPivot, "/".
	Rootfs string `json:"rootfs"`
	// Dir is the container's directory in the depot.
	Dir string `json:"dir"`
}

// The hook points, as HookState.Point names them.
const (
	HookParentBeforeClone = "parent-before-clone"
	HookParentAfterClone  = "parent-after-clone"
	HookChildBeforePivot  = "child-before-pivot"
	HookChildAfterPivot   = "child-after-pivot"
	HookAfterStart        = "after-start"
	HookBeforeStop        = "before-stop"
	HookAfterDestroy      = "after-destroy"
)

// ErrHook is wrapped by every *HookError.
var ErrHook = errors.New("container: hook failed")

// HookError reports a hook that failed or timed out.
type HookError struct {
	Point string // the hook point
	Name  string // the hook's name (or path)
	Err   error
}

func (e *HookError) Error() string {
	return fmt.Sprintf("container: hook %s at %s: %v", e.Name, e.Point, e.Err)
}

// Unwrap returns ErrHook and the hook's own error.
func (e *HookError) Unwrap() []error { return []error{ErrHook, e.Err} }

var (
	childHooksMu sync.Mutex
	childHooks   = map[string]func(HookState) error{}
)

// RegisterChildHook registers a Go function that child hooks can name. It
// must run in the agent too, so call it from an init function or from
// main before Init. It panics when name is registered twice, as
// http.Handle does, since that is a programming error.
func RegisterChildHook(name string, f func(HookState) error) {
	childHooksMu.Lock()
	defer childHooksMu.Unlock()
	if _, dup := childHooks[name]; dup {
		panic("container: child hook " + name + " registered twice")
	}
	childHooks[name] = f
}

func (h *Hook) label() string {
	if h.Name != "" {
		return h.Name
	}
	return h.Path
}

func (h *Hook) validate(point string, child bool) error {
	switch {
	case h.Path != "" && h.Func != nil:
		return specErr("Hooks."+point, "hook %q has both Path and Func", h.label())
	case h.Path == "" && h.Func == nil && !child:
		return specErr("Hooks."+point, "hook %q has neither Path nor Func", h.label())
	case child && h.Func != nil:
		return specErr("Hooks."+point, "child hook %q has a Func: register it with RegisterChildHook and name it", h.label())
	case child && h.Path == "" && h.Name == "":
		return specErr("Hooks."+point, "child hook without Name or Path")
	case h.Timeout < 0:
		return specErr("Hooks."+point, "hook %q has a negative timeout", h.label())
	}
	return nil
}

func (hs *Hooks) validate() error {
	for point, list := range map[string][]Hook{
		HookParentBeforeClone: hs.ParentBeforeClone, HookParentAfterClone: hs.ParentAfterClone,
		HookAfterStart: hs.AfterStart, HookBeforeStop: hs.BeforeStop, HookAfterDestroy: hs.AfterDestroy,
	} {
		for i := range list {
			if err := list[i].validate(point, false); err != nil {
				return err
			}
		}
	}
	for point, list := range map[string][]Hook{HookChildBeforePivot: hs.ChildBeforePivot, HookChildAfterPivot: hs.ChildAfterPivot} {
		for i := range list {
			if err := list[i].validate(point, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// runHooks runs the hooks of one point in order and stops at the first
// failure.
func runHooks(ctx context.Context, hooks []Hook, s HookState, log *os.File) error {
	for i := range hooks {
		if err := runHook(ctx, &hooks[i], s, log); err != nil {
			return &HookError{Point: s.Point, Name: hooks[i].label(), Err: err}
		}
	}
	return nil
}

func runHook(ctx context.Context, h *Hook, s HookState, log *os.File) error {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.Func != nil:
		done := make(chan error, 1)
		go func() { done <- h.Func(ctx, s) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v", timeout)
		}
	case h.Path != "":
		state, err := json.Marshal(s)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, h.Path, h.Args...)
		cmd.Env = append(append(os.Environ(), h.Env...), "PAASKIT_HOOK="+s.Point, "PAASKIT_HANDLE="+s.Handle, fmt.Sprintf("PAASKIT_PID=%d", s.Pid))
		cmd.Stdin = bytes.NewReader(state)
		if log != nil {
			cmd.Stdout, cmd.Stderr = log, log
		}
		cmd.WaitDelay = time.Second
		err = cmd.Run()
		if ctx.Err() != nil {
			return fmt.Errorf("timed out after %v", timeout)
		}
		return err
	default: // a registered child hook
		childHooksMu.Lock()
		f, ok := childHooks[h.Name]
		childHooksMu.Unlock()
		if !ok {
			return fmt.Errorf("no child hook registered as %q in this program", h.Name)
		}
		done := make(chan error, 1)
		go func() { done <- f(s) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v", timeout)
		}
	}
}
