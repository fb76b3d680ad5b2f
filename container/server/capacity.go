package server

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parseMemTotal reads MemTotal, in bytes, from a /proc/meminfo stream.
func parseMemTotal(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "MemTotal" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server: meminfo: MemTotal %q: %w", f[0], err)
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("server: meminfo: %w", err)
	}
	return 0, fmt.Errorf("server: meminfo: no MemTotal line")
}
