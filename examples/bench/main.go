// Command bench runs paaskit's benchmark suites and, in the same run, the
// same work on paaskit's peers, and prints one line per figure:
//
//	BENCH <name> <value> <unit>
//
// or, with -json, the same figures as a JSON array of
// {"name", "value", "unit"} objects (value null when a figure could not be
// measured). A figure that could not be measured prints as "n/a" and a
// "# <peer>: <error>" comment on stderr says why. Progress and diagnostics
// go to stderr, so stdout holds only the figures.
//
// Usage:
//
//	go run ./examples/bench -suite container [-n 50] [-scale 200] [-json] [-depot DIR]
//
// Suites are those of DESIGN.md: container, droplet, nats, staging,
// instance, push, plus warden (the container daemon), and all. push does
// not exist yet; asking for it alone exits with status 2, and all runs
// those that exist. Each suite's figures are described in its file.
//
// The container suite measures, on a stack built from the host's own
// binaries: container.lifecycle (Create, Run /bin/true, Wait, Destroy) and
// container.exec (Run /bin/true and Wait in a running container), p50 and
// p90 over -n iterations after one warm-up, on paaskit and, as
// container.lifecycle.runc (`runc run`) and container.exec.runc (`runc
// exec` into a `runc run -d` container), on runc and crun with the same
// root filesystem; the ratios paaskit p50 / peer p50 (vs_runc, vs_crun,
// vs_runc_exec, vs_crun_exec); and, with -scale containers each running
// sleep, how long the first and the last Create took
// (container.scale.first_create, last_create, last_vs_first), the mean
// PSS of their agents (container.idle_pss_per_container) and, once they
// are destroyed, the mounts, cgroups and depot entries left of them
// (container.scale.leftovers, 0 when all is well). With networking:
// container.create_destroy and container.lifecycle_net (Create and
// Destroy without and with a network), their ratio, and the throughput
// of a transfer from the host to a container through a NetIn port against
// the same transfer over the host's loopback (see network.go).
//
// The container suite needs Linux and root (see package container); it
// creates real containers, cgroups and mounts, and removes them all before
// it exits, also when interrupted with Ctrl-C (a second Ctrl-C abandons
// the cleanup). runc and crun are used when found on PATH; the program
// installs nothing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"

	"github.com/paaskit/paaskit/container"
)

func main() {
	// The container agent is this binary re-executed: let it take over
	// before anything else runs.
	if container.Init() {
		return
	}
	if len(os.Args) == 3 && os.Args[1] == sinkFlag { // see network.go
		os.Exit(runSink(os.Args[2]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config holds the command-line flags.
type config struct {
	suite string
	n     int    // iterations per timed figure
	scale int    // containers of the scale test
	json  bool   // print JSON instead of BENCH lines
	depot string // container depot; a temporary one when empty
}

// suites are the suite names of DESIGN.md in the order "all" runs them;
// a nil function is a suite not implemented yet.
var suites = []struct {
	name string
	run  func(ctx context.Context, cfg config, r *report) error
}{
	{"container", runContainerSuite},
	{"droplet", runDropletSuite},
	{"nats", runNatsSuite},
	{"staging", runStagingSuite},
	{"instance", runInstanceSuite}, // see instance.go
	{"push", nil},
	{"warden", runWardenSuite}, // see warden.go
}

// run is main without the process exit: it parses args, runs the suites
// and prints the figures to stdout. It returns the exit status: 0, 1 when
// a suite failed, 2 for a usage error or a suite not implemented yet.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.suite, "suite", "container", "suite to run: container, droplet, nats, staging, instance, push or all")
	fs.IntVar(&cfg.n, "n", 50, "iterations per timed figure (percentiles need at least 50 to mean much)")
	fs.IntVar(&cfg.scale, "scale", 200, "containers created by the scale test")
	fs.BoolVar(&cfg.json, "json", false, "print the figures as a JSON array instead of BENCH lines")
	fs.StringVar(&cfg.depot, "depot", "", "container depot directory (default: a temporary directory, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.n < 1 || cfg.scale < 1 {
		fmt.Fprintln(stderr, "bench: -n and -scale must be at least 1")
		return 2
	}

	var todo []func(context.Context, config, *report) error
	known := false
	for _, s := range suites {
		switch {
		case cfg.suite != "all" && cfg.suite != s.name:
			continue
		case s.run == nil && cfg.suite == "all":
			fmt.Fprintf(stderr, "# suite %s not implemented yet, skipped\n", s.name)
		case s.run == nil:
			fmt.Fprintf(stderr, "suite %s not implemented yet\n", s.name)
			return 2
		default:
			todo = append(todo, s.run)
		}
		known = true
	}
	if !known && cfg.suite != "all" {
		fmt.Fprintf(stderr, "bench: unknown suite %q\n", cfg.suite)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, cleanup runs; a second one kills as usual.
	context.AfterFunc(ctx, func() {
		stop()
		fmt.Fprintln(stderr, "# interrupted: cleaning up (interrupt again to abandon)")
	})

	r := &report{log: stderr}
	var runErr error
	for _, f := range todo {
		if runErr = f(ctx, cfg, r); runErr != nil {
			break
		}
	}
	// Print what was measured, also when a suite failed half-way.
	if err := r.write(stdout, cfg.json); err != nil {
		fmt.Fprintf(stderr, "bench: write figures: %v\n", err)
		return 1
	}
	if runErr != nil {
		if ctx.Err() != nil && errors.Is(runErr, context.Canceled) {
			fmt.Fprintf(stderr, "bench: interrupted: %v\n", runErr)
			return 1
		}
		fmt.Fprintf(stderr, "bench: %v\n", runErr)
		return 1
	}
	return 0
}

// figure is one measured value. Value is nil when the figure could not be
// measured (printed as n/a, and null in JSON).
type figure struct {
	Name  string   `json:"name"`
	Value *float64 `json:"value"`
	Unit  string   `json:"unit"`
}

// report collects the figures of a run, in the order they were added. Its
// zero value is usable and discards comments; it is not safe for
// concurrent use.
type report struct {
	figures []figure
	log     io.Writer // receives "# ..." comments; nil discards them
}

// add records a measured figure.
func (r *report) add(name string, value float64, unit string) {
	r.figures = append(r.figures, figure{Name: name, Value: &value, Unit: unit})
}

// addNA records a figure that could not be measured; why, when not nil,
// is printed as a "# <who>: <why>" comment.
func (r *report) addNA(name, unit, who string, why error) {
	r.figures = append(r.figures, figure{Name: name, Unit: unit})
	if why != nil {
		r.commentf("%s: %v", who, why)
	}
}

// addMaybe records value, or n/a when it is nil (for figures derived from
// others, such as ratios).
func (r *report) addMaybe(name string, value *float64, unit string) {
	if value == nil {
		r.addNA(name, unit, "", nil)
		return
	}
	r.add(name, *value, unit)
}

// commentf prints a "# ..." diagnostic line to the report's log.
func (r *report) commentf(format string, args ...any) {
	if r.log != nil {
		fmt.Fprintf(r.log, "# "+format+"\n", args...)
	}
}

// value returns the recorded value of the named figure, or nil when it is
// missing or n/a.
func (r *report) value(name string) *float64 {
	for _, f := range r.figures {
		if f.Name == name {
			return f.Value
		}
	}
	return nil
}

// write prints the figures as BENCH lines, or as a JSON array when
// asJSON is set.
func (r *report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		out := make([]figure, len(r.figures))
		for i, f := range r.figures {
			out[i] = f
			if f.Value != nil {
				v := roundTo(*f.Value, decimals(f.Unit))
				out[i].Value = &v
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, f := range r.figures {
		if _, err := fmt.Fprintln(w, formatLine(f)); err != nil {
			return err
		}
	}
	return nil
}

// formatLine formats a figure as "BENCH <name> <value> <unit>".
func formatLine(f figure) string {
	v := "n/a"
	if f.Value != nil {
		v = strconv.FormatFloat(roundTo(*f.Value, decimals(f.Unit)), 'f', decimals(f.Unit), 64)
	}
	return fmt.Sprintf("BENCH %s %s %s", f.Name, v, f.Unit)
}

// decimals is how many decimals a value of that unit is printed with.
func decimals(unit string) int {
	if unit == "count" {
		return 0
	}
	return 2
}

func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// percentile returns the p-th percentile (0 to 100) of samples, by linear
// interpolation between the two nearest ranks (numpy's default), or an
// error when there are no samples. samples is not modified.
func percentile(samples []float64, p float64) (float64, error) {
	if len(samples) == 0 {
		return 0, errors.New("percentile of no samples")
	}
	if p < 0 || p > 100 || math.IsNaN(p) {
		return 0, fmt.Errorf("percentile %v outside 0..100", p)
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	return s[lo] + (s[hi]-s[lo])*(rank-float64(lo)), nil
}

// ratio returns a / b, or nil when either is n/a or b is zero.
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	v := *a / *b
	return &v
}
