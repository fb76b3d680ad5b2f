package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// historyLimit is how many lines the repl's history file keeps.
const historyLimit = 1000

func newReplCmd(a *app) *cobra.Command {
	var historyPath string
	cmd := &cobra.Command{
		Use:   "repl",
		Short: "An interactive shell of warden requests (warden-repl)",
		Long: `repl reads commands, one per line, and sends them to the server: the client
commands of warden without the "warden" (ping answers pong). "help" lists
them, "help COMMAND" explains one; "exit", "quit" or Ctrl-D leaves. On a
terminal, lines can be edited and the history (up and down arrows) is kept
in --history.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.repl(cmd.Context(), historyPath)
		},
	}
	home, _ := os.UserHomeDir()
	def := ""
	if home != "" {
		def = filepath.Join(home, ".warden_history")
	}
	cmd.Flags().StringVar(&historyPath, "history", def, "history file (empty: none)")
	return cmd
}

// lineReader reads the repl's lines: with editing and history on a
// terminal, plainly otherwise.
type lineReader interface {
	readLine() (string, error)
}

type plainReader struct{ sc *bufio.Scanner }

func (r plainReader) readLine() (string, error) {
	if r.sc.Scan() {
		return r.sc.Text(), nil
	}
	if err := r.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// termReader edits lines on a terminal in raw mode, which it leaves
// while the command runs so that its output prints normally.
type termReader struct {
	fd      int
	t       *term.Terminal
	history *os.File // appended to; nil: none
}

func (r *termReader) readLine() (string, error) {
	state, err := term.MakeRaw(r.fd)
	if err != nil {
		return "", err
	}
	line, err := r.t.ReadLine()
	term.Restore(r.fd, state)
	if err == nil && r.history != nil && strings.TrimSpace(line) != "" {
		fmt.Fprintln(r.history, line)
	}
	return line, err
}

// repl runs the interactive shell until EOF or exit.
func (a *app) repl(ctx context.Context, historyPath string) error {
	var lr lineReader = plainReader{bufio.NewScanner(a.stdin)}
	prompt := func() {}
	if in, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		t := term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{in, a.stdout}, "warden> ")
		tr := &termReader{fd: int(in.Fd()), t: t}
		if historyPath != "" {
			loadHistory(t, historyPath)
			if f, err := os.OpenFile(historyPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
				defer f.Close()
				tr.history = f
			}
		}
		lr = tr
	}
	a.inRepl = true
	for {
		prompt()
		line, err := lr.readLine()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		words, err := splitLine(line)
		if err != nil {
			fmt.Fprintf(a.stderr, "warden: %v\n", err)
			continue
		}
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "exit", "quit":
			return nil
		case "serve", "repl":
			fmt.Fprintf(a.stderr, "warden: %s is not a repl command\n", words[0])
			continue
		}
		if code := a.replCommand(ctx, words); code != 0 {
			fmt.Fprintf(a.stdout, "exit status %d\n", code)
		}
	}
}

// replCommand runs one line with its own interrupt handling: Ctrl-C
// cancels the command, not the repl.
func (a *app) replCommand(ctx context.Context, words []string) int {
	cctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.run(cctx, words)
}

// loadHistory feeds the last lines of the history file to t.
func loadHistory(t *term.Terminal, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > historyLimit {
		lines = lines[len(lines)-historyLimit:]
		os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	}
	for _, l := range lines {
		if l != "" {
			t.History.Add(l)
		}
	}
}

// splitLine splits a command line into words as a shell would for
// simple cases: blanks separate words, single quotes keep everything,
// double quotes keep all but backslash escapes of \ and ", and a
// backslash outside quotes escapes the next character.
func splitLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
