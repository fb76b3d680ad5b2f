package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/spf13/cobra"
)

// addClientCommands adds a command per warden request.
func addClientCommands(root *cobra.Command, a *app) {
	root.AddCommand(
		simpleCmd(a, "ping", "Check that the server answers (prints pong)", exactArgs(0),
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				if err := cl.Ping(cmd.Context()); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, "pong")
				return nil
			}),
		simpleCmd(a, "capacity", "Print the host's memory, disk and container capacity", exactArgs(0),
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				c, err := cl.Capacity(cmd.Context())
				if err != nil {
					return err
				}
				return a.printJSON(c)
			}),
		newCreateCmd(a),
		newListCmd(a),
		simpleCmd(a, "info HANDLE", "Print what a container is doing and uses", exactArgs(1),
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				c, err := cl.Lookup(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				info, err := c.Info(cmd.Context())
				if err != nil {
					return err
				}
				return a.printJSON(info)
			}),
		simpleCmd(a, "bulk-info [HANDLE...]", "Print the info of several containers (all when none is named)", cobra.ArbitraryArgs,
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				res, err := cl.BulkInfo(cmd.Context(), args)
				if err != nil {
					return err
				}
				out := map[string]any{}
				for h, r := range res {
					out[h] = resultJSON(r.Info, r.Err)
				}
				return a.printJSON(out)
			}),
		simpleCmd(a, "metrics [HANDLE...]", "Print the resource use of containers (all when none is named)", cobra.ArbitraryArgs,
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				res, err := cl.BulkMetrics(cmd.Context(), args)
				if err != nil {
					return err
				}
				if len(args) == 1 {
					r := res[args[0]]
					if r.Err != nil {
						return r.Err
					}
					return a.printJSON(r.Metrics)
				}
				out := map[string]any{}
				for h, r := range res {
					out[h] = resultJSON(r.Metrics, r.Err)
				}
				return a.printJSON(out)
			}),
		newRunCmd(a),
		newAttachCmd(a),
		containerCmd(a, "signal HANDLE ID SIGNAL", "Send a signal (name or number) to a process", exactArgs(3),
			func(cmd *cobra.Command, c *client.Container, args []string) error {
				sig, err := parseSignal(args[2])
				if err != nil {
					return usageError{err}
				}
				p, err := c.Attach(cmd.Context(), args[1], container.ProcessIO{})
				if err != nil {
					return err
				}
				defer p.Close()
				return p.Signal(cmd.Context(), sig)
			}),
		newStopCmd(a),
		simpleCmd(a, "destroy HANDLE...", "Destroy containers and everything they hold", minArgs(1),
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				for _, h := range args {
					if err := cl.Destroy(cmd.Context(), h); err != nil {
						return err
					}
				}
				return nil
			}),
		newNetInCmd(a),
		newNetOutCmd(a),
		newStreamInCmd(a),
		newStreamOutCmd(a),
		newLimitMemoryCmd(a),
		newLimitCPUCmd(a),
		newLimitDiskCmd(a),
		newLimitBandwidthCmd(a),
		containerCmd(a, "properties HANDLE", "Print a container's properties", exactArgs(1),
			func(cmd *cobra.Command, c *client.Container, args []string) error {
				p := c.Properties()
				if p == nil {
					p = map[string]string{}
				}
				return a.printJSON(p)
			}),
		containerCmd(a, "grace-time HANDLE", "Print a container's grace time", exactArgs(1),
			func(cmd *cobra.Command, c *client.Container, args []string) error {
				g, err := c.GraceTime(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, g)
				return nil
			}),
		simpleCmd(a, "quota", "Print every container's disk use and limits (repquota)", exactArgs(0),
			func(cmd *cobra.Command, cl *client.Client, args []string) error {
				backend, tried, err := cl.QuotaBackend(cmd.Context())
				if err != nil {
					return err
				}
				entries, err := cl.QuotaReport(cmd.Context())
				if err != nil {
					return err
				}
				type line struct {
					Handle string
					container.DiskUsage
					Error string `json:",omitempty"`
				}
				lines := make([]line, len(entries))
				for i, e := range entries {
					lines[i] = line{Handle: e.Handle, DiskUsage: e.DiskUsage}
					if e.Err != nil {
						lines[i].Error = e.Err.Error()
					}
				}
				return a.printJSON(map[string]any{"backend": backend, "tried": tried, "containers": lines})
			}),
	)
}

// resultJSON is one entry of a bulk answer as printed.
func resultJSON(v any, err error) any {
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return v
}

// simpleCmd is a command that needs the client.
func simpleCmd(a *app, use, short string, args cobra.PositionalArgs, run func(*cobra.Command, *client.Client, []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, argv []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.reqCtx(cmd.Context())
			defer cancel()
			cmd.SetContext(ctx)
			return run(cmd, cl, argv)
		},
	}
}

// containerCmd is a command on the container its first argument names.
func containerCmd(a *app, use, short string, args cobra.PositionalArgs, run func(*cobra.Command, *client.Container, []string) error) *cobra.Command {
	return simpleCmd(a, use, short, args, func(cmd *cobra.Command, cl *client.Client, argv []string) error {
		c, err := cl.Lookup(cmd.Context(), argv[0])
		if err != nil {
			return err
		}
		return run(cmd, c, argv)
	})
}

// size parses a byte count with an optional unit ("64m", "1g", "4096").
func size(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n < 0 {
		return 0, usagef("size %q: want bytes with an optional unit (k, m, g)", s)
	}
	return n, nil
}

// keyValues parses repeated KEY=VALUE flags.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--%s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func newCreateCmd(a *app) *cobra.Command {
	var (
		spec         container.Spec
		stack        string
		binds, props []string
		memory, disk string
		grace        time.Duration
		cpuShares    uint64
		pids, inodes int64
	)
	cmd := simpleCmd(a, "create", "Create a container and print its handle", exactArgs(0),
		func(cmd *cobra.Command, cl *client.Client, _ []string) error {
			if stack != "" {
				if spec.RootFS != "" {
					return usagef("--rootfs and --stack exclude each other")
				}
				spec.RootFS = stack
			}
			for _, b := range binds {
				parts := strings.Split(b, ":")
				if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
					return usagef("--bind %q: want SRC:DST[:ro|rw]", b)
				}
				spec.BindMounts = append(spec.BindMounts, container.BindMount{SrcPath: parts[0], DstPath: parts[1], ReadOnly: len(parts) == 3 && parts[2] == "ro"})
			}
			var err error
			if spec.Properties, err = keyValues("property", props); err != nil {
				return err
			}
			if memory != "" {
				if spec.Limits.MemoryBytes, err = size(memory); err != nil {
					return err
				}
			}
			if disk != "" {
				if spec.Limits.DiskBytes, err = size(disk); err != nil {
					return err
				}
			}
			spec.Limits.CPUShares, spec.Limits.PidsMax, spec.Limits.DiskInodes = cpuShares, pids, inodes
			spec.GraceTime = grace
			c, err := cl.Create(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, c.Handle())
			return nil
		})
	cmd.Long = `create makes and starts a container and prints its handle. --rootfs is a
directory or tarball on the server's host, or the name of one of the server's
stacks (as --stack); without either the server's default stack is used.`
	f := cmd.Flags()
	f.StringVar(&spec.Handle, "handle", "", "the container's handle (default: generated)")
	f.StringVar(&spec.RootFS, "rootfs", "", "root filesystem: a directory or tarball on the server, or a stack name")
	f.StringVar(&stack, "stack", "", "one of the server's named stacks")
	f.StringArrayVar(&binds, "bind", nil, "bind mount SRC:DST[:ro|rw] (repeatable)")
	f.StringArrayVar(&spec.Env, "env", nil, "KEY=VALUE for every process (repeatable)")
	f.StringVar(&spec.Hostname, "hostname", "", "host name (default: from the handle)")
	f.StringArrayVar(&props, "property", nil, "KEY=VALUE label (repeatable)")
	f.StringVar(&memory, "memory", "", "memory limit (e.g. 256m)")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares (2-262144)")
	f.Int64Var(&pids, "pids", 0, "limit of processes and threads")
	f.StringVar(&disk, "disk", "", "disk limit of the writable layer (e.g. 1g)")
	f.Int64Var(&inodes, "inodes", 0, "inode limit of the writable layer")
	f.DurationVar(&grace, "grace-time", 0, "destroy the container after this long without activity (0: never)")
	f.StringVar(&spec.User, "user", "", "default user of processes (name or uid:gid)")
	return cmd
}

func newListCmd(a *app) *cobra.Command {
	var props []string
	cmd := simpleCmd(a, "list", "Print the handles of the containers, one per line", exactArgs(0),
		func(cmd *cobra.Command, cl *client.Client, _ []string) error {
			filter, err := keyValues("property", props)
			if err != nil {
				return err
			}
			cs, err := cl.List(cmd.Context(), filter)
			if err != nil {
				return err
			}
			for _, c := range cs {
				fmt.Fprintln(a.stdout, c.Handle())
			}
			return nil
		})
	cmd.Flags().StringArrayVar(&props, "property", nil, "only containers with this KEY=VALUE property (repeatable)")
	return cmd
}

func newStopCmd(a *app) *cobra.Command {
	var kill bool
	cmd := containerCmd(a, "stop HANDLE", "Stop every process of a container (TERM, then KILL)", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) error {
			return c.Stop(cmd.Context(), kill)
		})
	cmd.Flags().BoolVar(&kill, "kill", false, "SIGKILL at once")
	return cmd
}

func newNetInCmd(a *app) *cobra.Command {
	var hostPort, containerPort uint16
	cmd := containerCmd(a, "net-in HANDLE", "Forward a host port to a container port", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) error {
			pm, err := c.NetIn(cmd.Context(), hostPort, containerPort)
			if err != nil {
				return err
			}
			return a.printJSON(pm)
		})
	cmd.Flags().Uint16Var(&hostPort, "host-port", 0, "host port (default: from the pool)")
	cmd.Flags().Uint16Var(&containerPort, "container-port", 0, "container port (default: the host port)")
	return cmd
}

func newNetOutCmd(a *app) *cobra.Command {
	var (
		rule               container.NetOutRule
		protocol, ports    string
		icmpType, icmpCode int
	)
	cmd := containerCmd(a, "net-out HANDLE", "Allow a container to reach a network", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) error {
			if err := rule.Protocol.UnmarshalText([]byte(protocol)); err != nil {
				return usageError{err}
			}
			if ports != "" {
				lo, hi, _ := strings.Cut(ports, "-")
				first, err1 := strconv.ParseUint(lo, 10, 16)
				var last uint64
				var err2 error
				if hi != "" {
					last, err2 = strconv.ParseUint(hi, 10, 16)
				}
				if err1 != nil || err2 != nil {
					return usagef("--ports %q: want PORT or FIRST-LAST", ports)
				}
				rule.Ports = container.PortRange{First: uint16(first), Last: uint16(last)}
			}
			if icmpType >= 0 {
				t := uint8(icmpType)
				rule.ICMPType = &t
			}
			if icmpCode >= 0 {
				c := uint8(icmpCode)
				rule.ICMPCode = &c
			}
			return c.NetOut(cmd.Context(), rule)
		})
	f := cmd.Flags()
	f.StringVar(&rule.Network, "network", "", "CIDR, address or FIRST-LAST range (default: any)")
	f.StringVar(&protocol, "protocol", "all", "tcp, udp, icmp or all")
	f.StringVar(&ports, "ports", "", "PORT or FIRST-LAST (tcp and udp)")
	f.IntVar(&icmpType, "icmp-type", -1, "ICMP type (icmp)")
	f.IntVar(&icmpCode, "icmp-code", -1, "ICMP code (icmp)")
	f.BoolVar(&rule.Log, "log", false, "log the first packet of each connection")
	return cmd
}

func newStreamInCmd(a *app) *cobra.Command {
	var path, user, file string
	cmd := containerCmd(a, "stream-in HANDLE --path DIR", "Extract a tar stream (stdin or --file) into a container", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) error {
			r := a.stdin
			if file != "" && file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			return c.StreamIn(cmd.Context(), path, user, r)
		})
	cmd.Aliases = []string{"copy-in"}
	f := cmd.Flags()
	f.StringVar(&path, "path", "", "destination directory in the container")
	f.StringVar(&user, "user", "", "owner of the files (name or uid:gid; default root)")
	f.StringVar(&file, "file", "-", "tar file (plain, gzip or zstd); - for stdin")
	cmd.MarkFlagRequired("path")
	return cmd
}

func newStreamOutCmd(a *app) *cobra.Command {
	var path, file string
	cmd := containerCmd(a, "stream-out HANDLE --path PATH", "Write a container's file or directory as a tar stream (stdout or --file)", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) (retErr error) {
			rc, err := c.StreamOut(cmd.Context(), path)
			if err != nil {
				return err
			}
			defer rc.Close()
			w := a.stdout
			if file != "" && file != "-" {
				f, err := os.Create(file)
				if err != nil {
					return err
				}
				defer func() {
					if err := f.Close(); err != nil && retErr == nil {
						retErr = err
					}
				}()
				w = f
			}
			_, err = io.Copy(w, rc)
			return err
		})
	cmd.Aliases = []string{"copy-out"}
	cmd.Flags().StringVar(&path, "path", "", "file or directory in the container")
	cmd.Flags().StringVar(&file, "file", "-", "tar file to write; - for stdout")
	cmd.MarkFlagRequired("path")
	return cmd
}

func newLimitMemoryCmd(a *app) *cobra.Command {
	return containerCmd(a, "limit-memory HANDLE [SIZE]", "Print or set a container's memory limit (0 lifts it)", rangeArgs(1, 2),
		func(cmd *cobra.Command, c *client.Container, args []string) error {
			if len(args) == 1 {
				l, err := c.Limits(cmd.Context())
				if err != nil {
					return err
				}
				return a.printJSON(map[string]int64{"limit_in_bytes": l.MemoryBytes})
			}
			n, err := size(args[1])
			if err != nil {
				return err
			}
			l, err := c.LimitMemory(cmd.Context(), n)
			if err != nil {
				return err
			}
			return a.printJSON(map[string]int64{"limit_in_bytes": l.MemoryBytes})
		})
}

func newLimitCPUCmd(a *app) *cobra.Command {
	return containerCmd(a, "limit-cpu HANDLE [SHARES]", "Print or set a container's CPU shares (0: the default)", rangeArgs(1, 2),
		func(cmd *cobra.Command, c *client.Container, args []string) error {
			if len(args) == 1 {
				l, err := c.Limits(cmd.Context())
				if err != nil {
					return err
				}
				return a.printJSON(map[string]uint64{"limit_in_shares": l.CPUShares})
			}
			n, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return usagef("shares %q: want a number", args[1])
			}
			l, err := c.LimitCPU(cmd.Context(), n)
			if err != nil {
				return err
			}
			return a.printJSON(map[string]uint64{"limit_in_shares": l.CPUShares})
		})
}

func newLimitDiskCmd(a *app) *cobra.Command {
	var bytes string
	var inodes uint64
	cmd := containerCmd(a, "limit-disk HANDLE [--bytes SIZE] [--inodes N]", "Print or set a container's disk limit", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) error {
			f := cmd.Flags()
			if f.Changed("bytes") || f.Changed("inodes") {
				l, err := c.Limits(cmd.Context())
				if err != nil {
					return err
				}
				b, in := uint64(l.DiskBytes), uint64(l.DiskInodes)
				if f.Changed("bytes") {
					n, err := size(bytes)
					if err != nil {
						return err
					}
					b = uint64(n)
				}
				if f.Changed("inodes") {
					in = inodes
				}
				if err := c.SetDiskLimit(cmd.Context(), b, in); err != nil {
					return err
				}
			}
			m, err := c.Metrics(cmd.Context())
			if err != nil {
				return err
			}
			return a.printJSON(m.Disk)
		})
	cmd.Flags().StringVar(&bytes, "bytes", "", "byte limit (e.g. 1g; 0 lifts it)")
	cmd.Flags().Uint64Var(&inodes, "inodes", 0, "inode limit (0 lifts it)")
	return cmd
}

func newLimitBandwidthCmd(a *app) *cobra.Command {
	var rate, burst string
	cmd := containerCmd(a, "limit-bandwidth HANDLE --rate SIZE --burst SIZE", "Shape a container's traffic (bytes per second, burst bytes)", exactArgs(1),
		func(cmd *cobra.Command, c *client.Container, _ []string) error {
			r, err := size(rate)
			if err != nil {
				return err
			}
			b, err := size(burst)
			if err != nil {
				return err
			}
			bw := container.Bandwidth{Rate: uint64(r), Burst: uint64(b)}
			if err := c.LimitBandwidth(cmd.Context(), bw); err != nil {
				return err
			}
			return a.printJSON(bw)
		})
	cmd.Flags().StringVar(&rate, "rate", "", "bytes per second (e.g. 1m)")
	cmd.Flags().StringVar(&burst, "burst", "", "burst in bytes (e.g. 64k)")
	cmd.MarkFlagRequired("rate")
	cmd.MarkFlagRequired("burst")
	return cmd
}
