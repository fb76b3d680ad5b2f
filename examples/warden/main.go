// Command warden is paaskit's container daemon and its command-line
// client, after Cloud Foundry's warden and warden-repl: one binary that
// serves a container.Manager on a unix socket (warden serve) and sends it
// every request (warden ping, create, run, …), plus an interactive shell
// (warden repl).
//
// Usage:
//
//	warden serve --depot DIR --socket PATH [--config FILE]   # foreground, until SIGTERM
//	warden --socket PATH ping                                 # prints pong
//	warden --socket PATH create --rootfs DIR                  # prints the handle
//	warden --socket PATH run HANDLE -- /bin/echo hi           # prints hi, exits with its status
//	warden --socket PATH run -t HANDLE -- /bin/bash           # interactive terminal
//	warden --socket PATH destroy HANDLE
//	warden --socket PATH repl                                 # warden-repl
//
// The socket defaults to $WARDEN_SOCKET, else /tmp/warden.sock (warden's).
// Run "warden help" and "warden help COMMAND" for every command and flag.
//
// # serve
//
// serve opens (or creates) the depot, re-discovers the containers already
// in it, and serves them until SIGTERM or SIGINT, when it drains the
// requests in flight, detaches the process streams and exits, leaving
// containers and processes running for the next start. Its settings come
// from flags or from a YAML file (--config; flags win):
//
//	depot: /var/lib/warden
//	socket: /run/warden.sock
//	socket_mode: "0660"        # or stricter
//	socket_group: 1000         # gid allowed to use the socket
//	log_level: info            # debug, info, warn, error
//	stacks:                    # create --rootfs NAME (or --stack NAME)
//	  base: /var/lib/stacks/base
//	default_stack: base        # create without --rootfs
//	quota: auto                # auto, kernel, image, scanner
//	stop_timeout: 10s
//	output_limit: 16777216
//	cgroup_parent: /paaskit
//	network:                   # omit for containers without a network
//	  subnet: 10.254.0.0/22
//	  host_ports: [61000, 61999]
//	  dns: [192.0.2.53]
//	  deny_egress: false
//
// Logs go to stderr through log/slog.
//
// # Exit status
//
// 0 on success; for run and attach, the process's exit status; 1 when a
// request failed (the error goes to stderr); 2 for a usage error.
package main

import (
	"context"
	"os"

	"github.com/paaskit/paaskit/container"
)

func main() {
	// The container agent is this binary re-executed: let it take over
	// before anything else runs.
	if container.Init() {
		return
	}
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
