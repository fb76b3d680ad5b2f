package staging

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// DefaultTailLines is how many of the last output lines an *Error carries.
const DefaultTailLines = 20

// logSink receives the staging log: it writes to the caller's writer and the
// droplet's logs/staging_task.log, and keeps the last lines for errors. It is
// safe for concurrent use (a process's stdout and stderr arrive together).
type logSink struct {
	mu      sync.Mutex
	outs    []io.Writer
	partial strings.Builder
	tail    []string
	max     int
	warns   []string
}

func newLogSink(max int, outs ...io.Writer) *logSink {
	var ws []io.Writer
	for _, w := range outs {
		if w != nil {
			ws = append(ws, w)
		}
	}
	return &logSink{outs: ws, max: max}
}

// Write implements io.Writer. Errors of the writers are ignored: a
// caller's broken log must not fail the staging.
func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.outs {
		_, _ = w.Write(p)
	}
	s := string(p)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			l.partial.WriteString(s)
			break
		}
		l.partial.WriteString(s[:i])
		l.addLine(strings.TrimRight(l.partial.String(), "\r"))
		l.partial.Reset()
		s = s[i+1:]
	}
	return len(p), nil
}

func (l *logSink) addLine(line string) {
	l.tail = append(l.tail, line)
	if len(l.tail) > l.max {
		l.tail = l.tail[len(l.tail)-l.max:]
	}
}

// printf writes one line.
func (l *logSink) printf(format string, args ...any) {
	fmt.Fprintf(l, format+"\n", args...)
}

// step writes a "-----> " line, as Cloud Foundry's stager does.
func (l *logSink) step(format string, args ...any) {
	l.printf("-----> "+format, args...)
}

// warn writes a warning line and records it for the Result.
func (l *logSink) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.warns = append(l.warns, msg)
	l.mu.Unlock()
	l.printf("%s", msg)
}

// lines returns a copy of the last lines, with any unterminated one.
func (l *logSink) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.tail...)
	if l.partial.Len() > 0 {
		out = append(out, l.partial.String())
	}
	if len(out) > l.max {
		out = out[len(out)-l.max:]
	}
	return out
}

func (l *logSink) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.warns...)
}

// humanSize prints n bytes as dea_ng did ("12K", "3.4M").
func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
