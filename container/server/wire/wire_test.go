package wire_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
	"github.com/paaskit/paaskit/internal/archive"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every sentinel survives the trip: FromError, JSON, Unwrap.
func TestErrorRoundTrip(t *testing.T) {
	tests := []struct {
		err    error
		code   wire.Code
		status int
	}{
		{fmt.Errorf("container %q: %w", "h", container.ErrNotFound), wire.CodeNotFound, 404},
		{fmt.Errorf("x: %w", container.ErrAlreadyExists), wire.CodeAlreadyExists, 409},
		{&container.SpecError{Field: "Handle", Reason: "bad"}, wire.CodeInvalidSpec, 400},
		{fmt.Errorf("run: %w", &container.SpecError{Field: "Path", Reason: "required"}), wire.CodeInvalidSpec, 400},
		{container.ErrStopped, wire.CodeStopped, 409},
		{container.ErrOutOfMemory, wire.CodeOutOfMemory, 409},
		{container.ErrClosed, wire.CodeClosed, 503},
		{container.ErrNoNetwork, wire.CodeNoNetwork, 501},
		{fmt.Errorf("%w: dial", container.ErrAgent), wire.CodeAgent, 502},
		{container.ErrPoolExhausted, wire.CodePoolExhausted, 507},
		{fmt.Errorf("x: %w", errors.ErrUnsupported), wire.CodeUnsupported, 501},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, wire.CodeNotExist, 404},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, wire.CodePermission, 403},
		{&archive.EntryError{Name: "../x", Err: archive.ErrUnsafePath}, wire.CodeUnsafePath, 400},
		{archive.ErrNotAllowed, wire.CodeNotAllowed, 400},
		{archive.ErrBadArchive, wire.CodeBadArchive, 400},
		{archive.ErrLimitExceeded, wire.CodeLimitExceeded, 413},
		{context.Canceled, wire.CodeCanceled, 499},
		{context.DeadlineExceeded, wire.CodeDeadlineExceeded, 504},
		{fmt.Errorf("x: %w", wire.ErrBadRequest), wire.CodeBadRequest, 400},
		{wire.ErrTooLarge, wire.CodeTooLarge, 413},
		{errors.New("something else"), wire.CodeInternal, 500},
		{fmt.Errorf("write: %w", syscall.ENOSPC), wire.CodeInternal, 500},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			we := wire.FromError(tc.err)
			require.NotNil(t, we)
			assert.Equal(t, tc.code, we.Code)
			assert.Equal(t, tc.status, we.Status())
			b, err := json.Marshal(we)
			require.NoError(t, err)
			var back wire.Error
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tc.err.Error(), back.Error())
			// What the client gets answers errors.Is like the original.
			for _, target := range []error{container.ErrNotFound, container.ErrAlreadyExists, container.ErrInvalidSpec,
				container.ErrStopped, container.ErrClosed, container.ErrAgent, fs.ErrNotExist, fs.ErrPermission,
				archive.ErrUnsafePath, context.Canceled, syscall.ENOSPC, syscall.ENOENT} {
				if errors.Is(tc.err, target) {
					assert.ErrorIs(t, &back, target)
				}
			}
			var se *container.SpecError
			if errors.As(tc.err, &se) {
				var got *container.SpecError
				require.ErrorAs(t, &back, &got)
				assert.Equal(t, *se, *got)
			}
		})
	}
	assert.Nil(t, wire.FromError(nil))
	unknown := &wire.Error{Code: "new-in-v9", Message: "m"}
	assert.ErrorIs(t, unknown, wire.ErrInternal)
	assert.Equal(t, http.StatusInternalServerError, unknown.Status())
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, wire.WriteFrame(&buf, wire.FrameStdout, []byte("hello")))
	require.NoError(t, wire.WriteFrame(&buf, wire.FrameStdinClose, nil))
	big := bytes.Repeat([]byte{7}, wire.MaxFrame)
	require.NoError(t, wire.WriteFrame(&buf, wire.FrameStderr, big))
	assert.ErrorIs(t, wire.WriteFrame(&buf, wire.FrameStderr, append(big, 1)), wire.ErrFrameTooLarge)

	fr := wire.NewFrameReader(&buf)
	typ, p, err := fr.Next()
	require.NoError(t, err)
	assert.Equal(t, wire.FrameStdout, typ)
	assert.Equal(t, "hello", string(p))
	typ, p, err = fr.Next()
	require.NoError(t, err)
	assert.Equal(t, wire.FrameStdinClose, typ)
	assert.Empty(t, p)
	typ, p, err = fr.Next()
	require.NoError(t, err)
	assert.Equal(t, wire.FrameStderr, typ)
	assert.Equal(t, big, p)
	_, _, err = fr.Next()
	assert.ErrorIs(t, err, io.EOF)

	// Truncated and hostile frames.
	_, _, err = wire.NewFrameReader(bytes.NewReader([]byte{'o', 0, 0, 0, 9, 'a'})).Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = wire.NewFrameReader(bytes.NewReader([]byte{'o', 0, 0})).Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = wire.NewFrameReader(bytes.NewReader([]byte{'i', 0xff, 0xff, 0xff, 0xff})).Next()
	assert.ErrorIs(t, err, wire.ErrFrameTooLarge)

	assert.Equal(t, "stdout", wire.FrameStdout.String())
	assert.Equal(t, "FrameType(0x7a)", wire.FrameType('z').String())
}

func TestDuration(t *testing.T) {
	b, err := json.Marshal(wire.GraceTimeResponse{GraceTime: wire.Duration(90 * time.Second)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"grace_time":"1m30s"}`, string(b))
	var g wire.GraceTimeResponse
	require.NoError(t, json.Unmarshal(b, &g))
	assert.Equal(t, wire.Duration(90*time.Second), g.GraceTime)
	assert.Error(t, json.Unmarshal([]byte(`{"grace_time":"soon"}`), &g))
}

// A Spec crosses the wire whole, new fields included, because it is
// encoded as the Go struct.
func TestSpecPassesWhole(t *testing.T) {
	spec := container.Spec{
		Handle: "h", RootFS: "/r", Env: []string{"A=b"}, Hostname: "x",
		Properties: map[string]string{"k": "v"}, GraceTime: time.Minute, User: "vcap",
		BindMounts: []container.BindMount{{SrcPath: "/a", DstPath: "/b", ReadOnly: true}},
		Limits:     container.Limits{MemoryBytes: 1 << 30, CPUShares: 10, PidsMax: 5, DiskBytes: 1 << 30, DiskInodes: 100},
	}
	b, err := json.Marshal(wire.CreateRequest{Spec: spec})
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var back wire.CreateRequest
	require.NoError(t, dec.Decode(&back))
	assert.Equal(t, spec, back.Spec)
}
