package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/paaskit/paaskit/container/client"
	"github.com/spf13/cobra"
)

// defaultSocket is warden's socket path, unless $WARDEN_SOCKET says
// otherwise.
func defaultSocket() string {
	if s := os.Getenv("WARDEN_SOCKET"); s != "" {
		return s
	}
	return "/tmp/warden.sock"
}

// app is one invocation of the program (or the repl's session): its
// streams, global flags and the client, made on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	socket  string
	timeout time.Duration

	cl     *client.Client
	inRepl bool
	// exitCode is set by the commands that end with a process's status
	// (run, attach).
	exitCode int
}

// client returns the app's client of the server.
func (a *app) client() (*client.Client, error) {
	if a.cl != nil && a.cl.Socket() != absPath(a.socket) {
		a.cl.Close()
		a.cl = nil
	}
	if a.cl == nil {
		cl, err := client.New(a.socket)
		if err != nil {
			return nil, err
		}
		a.cl = cl
	}
	return a.cl, nil
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func (a *app) close() {
	if a.cl != nil {
		a.cl.Close()
	}
}

// reqCtx bounds one request by --timeout (when set).
func (a *app) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout > 0 {
		return context.WithTimeout(ctx, a.timeout)
	}
	return context.WithCancel(ctx)
}

// printJSON prints v, indented, to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exactArgs and rangeArgs are cobra's, returning usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// newRootCmd builds the command tree of one invocation.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "warden",
		Short: "paaskit's container daemon (serve) and its client",
		Long: `warden serves paaskit containers on a unix socket (warden serve) and sends
that server every request of Cloud Foundry's warden protocol.

  warden serve --depot DIR --socket PATH [--config FILE]
  warden --socket PATH ping
  warden --socket PATH create --rootfs DIR
  warden --socket PATH run HANDLE -- /bin/echo hi
  warden --socket PATH repl`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	// In the repl, each line starts from the session's settings.
	socket := a.socket
	if socket == "" {
		socket = defaultSocket()
	}
	pf.StringVar(&a.socket, "socket", socket, "the server's unix socket ($WARDEN_SOCKET)")
	pf.DurationVar(&a.timeout, "timeout", a.timeout, "time limit of each request (0: none; run and attach wait for their process regardless)")

	root.AddCommand(newServeCmd(a))
	addClientCommands(root, a)
	if !a.inRepl {
		root.AddCommand(newReplCmd(a))
	}
	return root
}

// execute runs the program with args and returns its exit status.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	defer a.close()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.run(ctx, args)
}

// run executes one command line and returns its exit status; errors are
// printed to stderr.
func (a *app) run(ctx context.Context, args []string) int {
	a.exitCode = 0
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return a.exitCode
	}
	fmt.Fprintf(a.stderr, "warden: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(a.stderr, "run 'warden help' for usage\n")
		return 2
	}
	return 1
}
