package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server"
	"go.yaml.in/yaml/v3"
)

// config is serve's settings: the YAML file's fields, which flags
// override.
type config struct {
	Depot        string            `yaml:"depot"`
	Socket       string            `yaml:"socket"`
	SocketMode   string            `yaml:"socket_mode"`  // octal, "0660" or stricter
	SocketGroup  *int              `yaml:"socket_group"` // gid; default the process's
	LogLevel     string            `yaml:"log_level"`
	Stacks       map[string]string `yaml:"stacks"`
	DefaultStack string            `yaml:"default_stack"`
	Quota        string            `yaml:"quota"`
	StopTimeout  time.Duration     `yaml:"stop_timeout"`
	OutputLimit  *int64            `yaml:"output_limit"`
	CgroupParent string            `yaml:"cgroup_parent"`
	Network      *networkConfig    `yaml:"network"`
}

// networkConfig is container.NetworkConfig in YAML.
type networkConfig struct {
	Bridge        string   `yaml:"bridge"`
	Subnet        string   `yaml:"subnet"`
	HostPorts     []uint16 `yaml:"host_ports"` // [first, last]
	MTU           int      `yaml:"mtu"`
	DNS           []string `yaml:"dns"`
	DenyEgress    bool     `yaml:"deny_egress"`
	DenyNetworks  []string `yaml:"deny_networks"`
	AllowNetworks []string `yaml:"allow_networks"`
}

// loadConfig reads a YAML config file strictly: unknown keys are errors.
func loadConfig(path string) (config, error) {
	var c config
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// logLevel parses a log level name.
func logLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// socketMode parses an octal mode ("0660").
func (c *config) socketMode() (fs.FileMode, error) {
	if c.SocketMode == "" {
		return server.DefaultSocketMode, nil
	}
	m, err := strconv.ParseUint(c.SocketMode, 8, 32)
	if err != nil || m&^0o660 != 0 {
		return 0, fmt.Errorf("socket mode %q: want octal, 0660 or stricter", c.SocketMode)
	}
	return fs.FileMode(m), nil
}

// managerOptions turns the config into container.Manager options.
func (c *config) managerOptions(log *slog.Logger) ([]container.Option, error) {
	opts := []container.Option{container.WithLogger(log)}
	switch q := container.QuotaBackend(c.Quota); q {
	case "", "auto":
	case container.QuotaKernel, container.QuotaImage, container.QuotaScanner:
		opts = append(opts, container.WithQuota(q))
	default:
		return nil, fmt.Errorf("quota %q: want auto, kernel, image or scanner", c.Quota)
	}
	if c.StopTimeout != 0 {
		opts = append(opts, container.WithStopTimeout(c.StopTimeout))
	}
	if c.OutputLimit != nil {
		opts = append(opts, container.WithOutputLimit(*c.OutputLimit))
	}
	if c.CgroupParent != "" {
		opts = append(opts, container.WithCgroupParent(c.CgroupParent))
	}
	if c.Network != nil {
		nc, err := c.Network.toContainer()
		if err != nil {
			return nil, err
		}
		opts = append(opts, container.WithNetwork(nc))
	}
	return opts, nil
}

// maxContainers is the size of the network pool (0 without networking):
// one address per container, less the network, gateway and broadcast
// addresses.
func (c *config) maxContainers() uint64 {
	if c.Network == nil {
		return 0
	}
	subnet := c.Network.Subnet
	if subnet == "" {
		subnet = "10.254.0.0/22"
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
		return 0
	}
	return 1<<(32-p.Bits()) - 3
}

func (n *networkConfig) toContainer() (container.NetworkConfig, error) {
	nc := container.NetworkConfig{Bridge: n.Bridge, MTU: n.MTU, DenyEgress: n.DenyEgress}
	var err error
	if n.Subnet != "" {
		if nc.Subnet, err = netip.ParsePrefix(n.Subnet); err != nil {
			return nc, fmt.Errorf("network subnet: %w", err)
		}
	}
	switch len(n.HostPorts) {
	case 0:
	case 2:
		nc.HostPorts = [2]uint16{n.HostPorts[0], n.HostPorts[1]}
	default:
		return nc, fmt.Errorf("network host_ports: want [first, last], got %v", n.HostPorts)
	}
	for _, s := range n.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nc, fmt.Errorf("network dns: %w", err)
		}
		nc.DNS = append(nc.DNS, a)
	}
	for _, l := range []struct {
		in  []string
		out *[]netip.Prefix
	}{{n.DenyNetworks, &nc.DenyNetworks}, {n.AllowNetworks, &nc.AllowNetworks}} {
		for _, s := range l.in {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nc, fmt.Errorf("network: %w", err)
			}
			*l.out = append(*l.out, p)
		}
	}
	return nc, nil
}

// parseHostPorts parses "first-last".
func parseHostPorts(s string) ([]uint16, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, fmt.Errorf("host ports %q: want first-last", s)
	}
	lo, err1 := strconv.ParseUint(a, 10, 16)
	hi, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("host ports %q: want first-last", s)
	}
	return []uint16{uint16(lo), uint16(hi)}, nil
}
