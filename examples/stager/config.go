package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of Config.
const (
	DefaultQueue              = "staging"
	DefaultWorkers            = 2
	DefaultQueueSize          = 16
	DefaultMaxStagingDuration = 15 * time.Minute
	DefaultShutdownTimeout    = 30 * time.Second
	DefaultHTTPAddr           = "127.0.0.1:0"
)

// ErrInvalidConfig is the class of configuration errors.
var ErrInvalidConfig = errors.New("stager: invalid configuration")

// Config is the stager's YAML configuration file. Zero values take the
// defaults above (see Config.setDefaults).
type Config struct {
	// NATS says where the bus is: URL of a server, or an embedded server.
	NATS NATSConfig `yaml:"nats"`
	// Queues are the subjects subscribed to, each in the queue group of
	// the same name (v1: `subscribe(q, :queue => q)`). Default ["staging"].
	Queues []string `yaml:"queues"`
	// Workers is how many stagings run at once. Default 2.
	Workers int `yaml:"workers"`
	// QueueSize is how many requests may wait for a worker; past it a
	// request is answered with a busy error. Default 16; 0 means the default,
	// negative means no waiting at all.
	QueueSize int `yaml:"queue_size"`
	// MaxStagingDuration bounds one staging (v1 max_staging_duration).
	MaxStagingDuration time.Duration `yaml:"max_staging_duration"`
	// ShutdownTimeout bounds how long running stagings may finish when the
	// service is stopped by a signal. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Stacks are the stacks the stager can stage on, by name; required.
	Stacks map[string]StackConfig `yaml:"stacks"`
	// DefaultStack is used for v1 requests (which name none) and DEA-era
	// requests without a stack. Default: the only stack, if there is one.
	DefaultStack string `yaml:"default_stack"`
	// BuildpacksDir holds the admin buildpacks, one directory per key (a v1
	// framework name is looked up here too).
	BuildpacksDir string `yaml:"buildpacks_dir"`
	// WorkDir holds staging workspaces and logs; required.
	WorkDir string `yaml:"work_dir"`
	// HTTPAddr is where logs and metrics are served. Default 127.0.0.1:0.
	HTTPAddr string `yaml:"http_addr"`
	// PublicURL is the base of the streaming log URLs; default
	// http://<HTTPAddr as bound>.
	PublicURL string `yaml:"public_url"`
	// Container sets the staging containers.
	Container ContainerConfig `yaml:"container"`
}

// NATSConfig says how to reach NATS.
type NATSConfig struct {
	// URL of the server(s); ignored when Embedded is set.
	URL string `yaml:"url"`
	// Embedded runs a NATS server inside the stager (port EmbeddedPort,
	// 0 for a free one).
	Embedded     bool `yaml:"embedded"`
	EmbeddedPort int  `yaml:"embedded_port"`
}

// StackConfig is one stack: a root file system, or the host's own (Host).
type StackConfig struct {
	RootFS string `yaml:"rootfs"`
	// Host builds a development stack from the host's /usr, /bin, /lib in
	// RootFS (see staging.HostStack).
	Host bool   `yaml:"host"`
	User string `yaml:"user"`
	UID  int    `yaml:"uid"`
	GID  int    `yaml:"gid"`
}

// ContainerConfig sets the staging containers' limits (minimums: a request
// may ask for more) and where the container depot is.
type ContainerConfig struct {
	Depot    string `yaml:"depot"`
	MemoryMB int64  `yaml:"memory_mb"`
	DiskMB   int64  `yaml:"disk_mb"`
	FDs      uint64 `yaml:"fds"`
}

// LoadConfig reads the YAML file at path and applies the defaults.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stager: config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig parses YAML, applies the defaults and validates.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if len(c.Queues) == 0 {
		c.Queues = []string{DefaultQueue}
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	switch {
	case c.QueueSize == 0:
		c.QueueSize = DefaultQueueSize
	case c.QueueSize < 0:
		c.QueueSize = 0
	}
	if c.MaxStagingDuration == 0 {
		c.MaxStagingDuration = DefaultMaxStagingDuration
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.DefaultStack == "" && len(c.Stacks) == 1 {
		for name := range c.Stacks {
			c.DefaultStack = name
		}
	}
}

// Validate reports the first problem of c, wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(field, reason string) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, reason)
	}
	switch {
	case c.Workers < 1:
		return bad("workers", "must be at least 1")
	case c.MaxStagingDuration < 0:
		return bad("max_staging_duration", "must not be negative")
	case c.WorkDir == "":
		return bad("work_dir", "required")
	case len(c.Stacks) == 0:
		return bad("stacks", "at least one stack required")
	}
	for _, q := range c.Queues {
		if q == "" {
			return bad("queues", "empty subject")
		}
	}
	for name, s := range c.Stacks {
		if s.RootFS == "" {
			return bad("stacks."+name+".rootfs", "required")
		}
	}
	if c.DefaultStack != "" {
		if _, ok := c.Stacks[c.DefaultStack]; !ok {
			return bad("default_stack", fmt.Sprintf("%q is not a configured stack", c.DefaultStack))
		}
	}
	return nil
}
