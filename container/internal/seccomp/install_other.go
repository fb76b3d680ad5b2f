//go:build !linux

package seccomp

import (
	"errors"

	"golang.org/x/net/bpf"
)

// Install loads a filter on the calling thread; it needs Linux.
func Install(prog []bpf.RawInstruction) error {
	return errors.New("seccomp: needs Linux: " + errors.ErrUnsupported.Error())
}
