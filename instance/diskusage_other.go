//go:build !linux

package instance

import (
	"errors"
	"fmt"
)

// diskUsage is not implemented on this platform.
func diskUsage(path string) (DiskUsage, error) {
	return DiskUsage{}, fmt.Errorf("instance: disk usage of %s: %w", path, errors.ErrUnsupported)
}
