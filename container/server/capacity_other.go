//go:build !linux

package server

import (
	"errors"
	"fmt"

	"github.com/paaskit/paaskit/container/server/wire"
)

// hostCapacity needs Linux (/proc/meminfo).
func hostCapacity(depot string) (wire.Capacity, error) {
	return wire.Capacity{}, fmt.Errorf("server: capacity needs Linux: %w", errors.ErrUnsupported)
}
