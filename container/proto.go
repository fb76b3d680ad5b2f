package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The Manager and a container's agent speak one JSON request and one JSON
// response per connection over the agent's unix socket. A run request
// with Stdin set keeps the connection open afterwards: what the client
// writes is the process's stdin, and closing the write half closes it.

const (
	opPing   = "ping"
	opRun    = "run"
	opSignal = "signal"
	opStop   = "stop"
	opList   = "list"
	opResize = "resize"
)

type agentRequest struct {
	Op      string       `json:"op"`
	Process *agentProc   `json:"process,omitempty"`
	ID      string       `json:"id,omitempty"`
	Signal  int          `json:"signal,omitempty"`
	Kill    bool         `json:"kill,omitempty"`
	Grace   jsonDuration `json:"grace,omitempty"`
	TTY     *TTYSpec     `json:"tty,omitempty"`
}

type agentProc struct {
	ID     string   `json:"id"`
	Path   string   `json:"path"`
	Args   []string `json:"args,omitempty"`
	Env    []string `json:"env,omitempty"`
	Dir    string   `json:"dir,omitempty"`
	User   string   `json:"user,omitempty"`
	Limits RLimits  `json:"limits"`
	Stdin  bool     `json:"stdin,omitempty"`
	TTY    *TTYSpec `json:"tty,omitempty"`
}

type agentResponse struct {
	Error     string         `json:"error,omitempty"`
	Code      string         `json:"code,omitempty"` // errCode* below
	PID       int            `json:"pid,omitempty"`
	Processes []agentProcRef `json:"processes,omitempty"`
}

type agentProcRef struct {
	ID  string `json:"id"`
	PID int    `json:"pid"`
}

const (
	errCodeExists   = "exists"
	errCodeNotFound = "not_found"
	errCodeInvalid  = "invalid"
	errCodeStopped  = "stopped"
)

// respErr turns an agent's error response back into the package's
// sentinels, so that errors.Is works on the Manager's side.
func (r *agentResponse) err() error {
	if r.Error == "" {
		return nil
	}
	var base error
	switch r.Code {
	case errCodeExists:
		base = ErrAlreadyExists
	case errCodeNotFound:
		base = ErrNotFound
	case errCodeInvalid:
		base = ErrInvalidSpec
	case errCodeStopped:
		base = ErrStopped
	default:
		base = ErrAgent
	}
	return fmt.Errorf("%w: %s", base, r.Error)
}

func codeOf(err error) string {
	switch {
	case errors.Is(err, ErrAlreadyExists):
		return errCodeExists
	case errors.Is(err, ErrNotFound):
		return errCodeNotFound
	case errors.Is(err, ErrInvalidSpec):
		return errCodeInvalid
	case errors.Is(err, ErrStopped):
		return errCodeStopped
	}
	return ""
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = jsonDuration(v)
	return err
}

// maxMessage bounds one request or response line (a process's path,
// arguments and environment together).
const maxMessage = 64 << 10

func writeMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func readMessage(r *bufio.Reader, v any) error {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return errors.New("message too long")
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

func newMessageReader(c net.Conn) *bufio.Reader { return newBufferReader(c) }

func newBufferReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, maxMessage) }
