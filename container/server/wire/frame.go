package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameType is the first byte of a frame of a process stream.
type FrameType byte

// The frame types. Server to client: FrameStdout, FrameStderr, FrameExit.
// Client to server: FrameStdin, FrameStdinClose.
const (
	FrameStdin      FrameType = 'i' // input bytes for the process
	FrameStdinClose FrameType = 'c' // no payload: close the process's stdin
	FrameStdout     FrameType = 'o' // output bytes, in order
	FrameStderr     FrameType = 'e'
	FrameExit       FrameType = 'x' // an Exit, as JSON; the last frame
)

// String returns the frame type's name ("stdout", …).
func (t FrameType) String() string {
	switch t {
	case FrameStdin:
		return "stdin"
	case FrameStdinClose:
		return "stdin-close"
	case FrameStdout:
		return "stdout"
	case FrameStderr:
		return "stderr"
	case FrameExit:
		return "exit"
	}
	return fmt.Sprintf("FrameType(%#x)", byte(t))
}

// MaxFrame is the largest payload a frame may carry. Writers split larger
// data; readers refuse larger frames with ErrFrameTooLarge.
const MaxFrame = 1 << 20

// FrameHeaderLen is the size of a frame's header: type and length.
const FrameHeaderLen = 5

// ErrFrameTooLarge: a frame announced a payload over MaxFrame.
var ErrFrameTooLarge = errors.New("wire: frame too large")

// AppendFrame appends a frame of type t carrying payload to dst and
// returns the result. payload must not be longer than MaxFrame.
func AppendFrame(dst []byte, t FrameType, payload []byte) []byte {
	dst = append(dst, byte(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// WriteFrame writes one frame of type t to w, in one Write call.
// A payload longer than MaxFrame returns ErrFrameTooLarge and writes
// nothing.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	if len(payload) > MaxFrame {
		return ErrFrameTooLarge
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, FrameHeaderLen+len(payload)), t, payload))
	return err
}

// FrameReader reads frames. It is not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	hdr [FrameHeaderLen]byte
	buf []byte
}

// NewFrameReader returns a FrameReader reading from r (buffer r yourself
// when it is a connection).
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next reads the next frame. The payload is valid until the next call.
// At the end of the stream between two frames it returns io.EOF; in the
// middle of a frame io.ErrUnexpectedEOF; a frame announcing more than
// MaxFrame bytes ErrFrameTooLarge (its payload is not read).
func (fr *FrameReader) Next() (FrameType, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	fr.buf = fr.buf[:n]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return FrameType(fr.hdr[0]), fr.buf, nil
}
