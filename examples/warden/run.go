package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/client"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func newRunCmd(a *app) *cobra.Command {
	var (
		spec                 container.ProcessSpec
		tty, interactive, bg bool
		rlimits              []string
	)
	cmd := &cobra.Command{
		Use:   "run HANDLE [flags] -- PROGRAM [ARG...]",
		Short: "Run a process in a container, stream its output and exit with its status",
		Long: `run starts PROGRAM in the container and streams its stdout and stderr
until it exits, then exits with its status (warden's run; with -d, spawn:
print the process id and return at once, and see attach). -i connects stdin;
-t runs the process on a terminal (stdin connected, the local terminal in raw
mode, window size changes forwarded). Without -t, SIGINT and SIGTERM are
forwarded to the process; a second one detaches (the process runs on).`,
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 && cmd.ArgsLenAtDash() != -1 {
				return usagef("want: run HANDLE -- PROGRAM [ARG...]")
			}
			if a.inRepl && (tty || interactive) {
				return usagef("-i and -t are not available in the repl: run warden run -t from a shell")
			}
			spec.Path, spec.Args = args[1], args[2:]
			limits, err := parseRLimits(rlimits)
			if err != nil {
				return err
			}
			spec.Limits = limits
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.reqCtx(cmd.Context())
			c, err := cl.Lookup(ctx, args[0])
			cancel()
			if err != nil {
				return err
			}
			return a.runProcess(cmd.Context(), c, spec, tty, interactive || tty, bg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.ID, "id", "", "the process's id (default: generated)")
	f.BoolVarP(&tty, "tty", "t", false, "run on a terminal (interactive)")
	f.BoolVarP(&interactive, "interactive", "i", false, "connect stdin")
	f.BoolVarP(&bg, "detach", "d", false, "print the process id and return (spawn)")
	f.StringArrayVarP(&spec.Env, "env", "e", nil, "KEY=VALUE (repeatable)")
	f.StringVar(&spec.Dir, "dir", "", "working directory in the container")
	f.StringVarP(&spec.User, "user", "u", "", "user (name or uid:gid)")
	f.StringArrayVar(&rlimits, "rlimit", nil, "NAME=VALUE resource limit, e.g. nofile=1024 (repeatable)")
	return cmd
}

func newAttachCmd(a *app) *cobra.Command {
	var stdoutOff, stderrOff int64
	cmd := &cobra.Command{
		Use:     "attach HANDLE ID",
		Aliases: []string{"link", "stream"},
		Short:   "Stream a process's output from any offset and exit with its status",
		Long: `attach streams the output of a process, running or exited (also one started
before the server restarted), from the given byte offsets, then exits with its
status (warden's link and stream).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.reqCtx(cmd.Context())
			defer cancel()
			c, err := cl.Lookup(ctx, args[0])
			if err != nil {
				return err
			}
			p, err := c.Attach(ctx, args[1], container.ProcessIO{Stdout: a.stdout, Stderr: a.stderr, StdoutOffset: stdoutOff, StderrOffset: stderrOff})
			if err != nil {
				return err
			}
			return a.wait(cmd.Context(), p, true)
		},
	}
	cmd.Flags().Int64Var(&stdoutOff, "stdout-offset", 0, "skip that many bytes of stdout")
	cmd.Flags().Int64Var(&stderrOff, "stderr-offset", 0, "skip that many bytes of stderr")
	return cmd
}

// runProcess runs spec in c and waits for it (unless bg).
func (a *app) runProcess(ctx context.Context, c *client.Container, spec container.ProcessSpec, tty, stdin, bg bool) error {
	pio := container.ProcessIO{Stdout: a.stdout, Stderr: a.stderr}
	if bg {
		pio = container.ProcessIO{}
	} else if stdin {
		pio.Stdin = a.stdin
	}
	var restore func()
	if tty {
		spec.TTY = &container.TTYSpec{Rows: 24, Columns: 80}
		if in, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
			if w, h, err := term.GetSize(int(in.Fd())); err == nil {
				spec.TTY = &container.TTYSpec{Rows: uint16(h), Columns: uint16(w)}
			}
			state, err := term.MakeRaw(int(in.Fd()))
			if err != nil {
				return err
			}
			restore = func() { term.Restore(int(in.Fd()), state) }
			defer restore()
		}
	}
	sctx, cancel := a.reqCtx(ctx)
	p, err := c.Run(sctx, spec, pio)
	cancel()
	if err != nil {
		return err
	}
	if bg {
		p.Close()
		fmt.Fprintln(a.stdout, p.ID())
		return nil
	}
	if restore != nil {
		stop := forwardWinch(p, a.stdin.(*os.File))
		defer stop()
	}
	return a.wait(ctx, p, !tty)
}

// wait waits for p and sets the exit code. With proxy, SIGINT and
// SIGTERM are forwarded to the process; a second one detaches.
func (a *app) wait(ctx context.Context, p *client.Process, proxy bool) error {
	// The command's context ends with the first SIGINT or SIGTERM (see
	// execute); take the signals over while waiting.
	sigs := make(chan os.Signal, 2)
	if proxy {
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
	}
	waitCtx := context.WithoutCancel(ctx)
	done := make(chan struct{})
	var code int
	var err error
	go func() {
		defer close(done)
		code, err = p.Wait(waitCtx)
	}()
	forwarded := false
	for {
		select {
		case <-done:
			if errors.Is(err, container.ErrOutOfMemory) {
				fmt.Fprintf(a.stderr, "warden: process %s was killed for memory\n", p.ID())
				err = nil
			}
			if errors.Is(err, client.ErrDetached) {
				return fmt.Errorf("%w; process %s runs on (warden attach to follow it)", err, p.ID())
			}
			if err != nil {
				return err
			}
			a.exitCode = code
			return nil
		case s := <-sigs:
			if forwarded {
				p.Close()
				<-done
				return fmt.Errorf("detached from process %s, which runs on", p.ID())
			}
			forwarded = true
			if err := p.Signal(waitCtx, s.(syscall.Signal)); err != nil && !errors.Is(err, container.ErrNotFound) {
				fmt.Fprintf(a.stderr, "warden: forward %v: %v\n", s, err)
			}
		}
	}
}

// forwardWinch sends the terminal's size to p whenever it changes.
func forwardWinch(p *client.Process, tty *os.File) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				if w, h, err := term.GetSize(int(tty.Fd())); err == nil {
					p.SetTTY(context.Background(), container.TTYSpec{Rows: uint16(h), Columns: uint16(w)})
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// parseSignal parses a signal name ("TERM", "SIGTERM") or number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: unknown", s)
}

// parseRLimits parses NAME=VALUE resource limits.
func parseRLimits(kvs []string) (container.RLimits, error) {
	var l container.RLimits
	fields := map[string]**uint64{
		"as": &l.AS, "core": &l.Core, "cpu": &l.CPU, "data": &l.Data, "fsize": &l.Fsize,
		"locks": &l.Locks, "memlock": &l.Memlock, "msgqueue": &l.Msgqueue, "nice": &l.Nice,
		"nofile": &l.Nofile, "nproc": &l.Nproc, "rss": &l.RSS, "rtprio": &l.Rtprio,
		"sigpending": &l.Sigpending, "stack": &l.Stack,
	}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		dst, known := fields[strings.ToLower(k)]
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || !known || err != nil {
			return l, usagef("--rlimit %q: want NAME=NUMBER, NAME one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, sigpending, stack", kv)
		}
		*dst = &n
	}
	return l, nil
}
