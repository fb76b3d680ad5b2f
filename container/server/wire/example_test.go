package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/container/server/wire"
)

// An error crosses the wire as a code and comes back as the sentinel.
func ExampleFromError() {
	err := fmt.Errorf("container %q: %w", "web-1", container.ErrNotFound)
	we := wire.FromError(err) // what the server sends
	fmt.Println(we.Code, we.Status())
	fmt.Println(errors.Is(we, container.ErrNotFound)) // what the client checks
	// Output:
	// not_found 404
	// true
}

// A process stream is a sequence of frames.
func ExampleFrameReader() {
	var conn bytes.Buffer
	wire.WriteFrame(&conn, wire.FrameStdout, []byte("hi\n"))
	wire.WriteFrame(&conn, wire.FrameExit, []byte(`{"status":{"code":0,"exited_at":"2024-01-01T00:00:00Z"}}`))
	fr := wire.NewFrameReader(&conn)
	for {
		t, payload, err := fr.Next()
		if err != nil {
			break
		}
		fmt.Printf("%v %q\n", t, payload)
	}
	// Output:
	// stdout "hi\n"
	// exit "{\"status\":{\"code\":0,\"exited_at\":\"2024-01-01T00:00:00Z\"}}"
}
