package droplettest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

// Example serves a synthetic droplet from a test blob store whose first
// response fails, and checks that a Registry retried and transferred it
// once. In a test, NewServer(t) replaces StartServer and Close.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "droplettest-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	srv, err := droplettest.StartServer(filepath.Join(tmp, "blobs"))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	var buf bytes.Buffer
	if _, err := droplettest.WriteTarball(&buf, droplettest.TreeSpec{Bytes: 256 << 10}, droplet.Gzip); err != nil {
		log.Fatal(err)
	}
	sum := sha1.Sum(buf.Bytes())
	if err := srv.Store.Put(ctx, "droplets/app", &buf); err != nil {
		log.Fatal(err)
	}
	srv.Fail("droplets/app", http.StatusServiceUnavailable, 1)

	reg, err := droplet.OpenRegistry(filepath.Join(tmp, "dea"), droplet.WithRetry(3, time.Millisecond, 10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Download(ctx, hex.EncodeToString(sum[:]), srv.URL("droplets/app")); err != nil {
		log.Fatal(err)
	}
	c := srv.Counts("droplets/app")
	fmt.Println("requests:", c.Gets, "transfers:", c.Transfers)
	// Output:
	// requests: 2 transfers: 1
}

// ExampleWriteEntries builds an archive with a name no tar writer
// would produce, and sees Unpack refuse it.
func ExampleWriteEntries() {
	var buf bytes.Buffer
	err := droplettest.WriteEntries(&buf, droplet.Gzip,
		droplettest.Entry{Name: "app/link", Type: tar.TypeSymlink, Link: "/etc"},
		droplettest.Entry{Name: "app/link/passwd", Body: "root::0:0::/:/bin/sh\n"},
	)
	if err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "droplettest-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	_, err = droplet.Unpack(context.Background(), &buf, filepath.Join(tmp, "app"), droplet.Limits{})
	fmt.Println(err)
	// Output:
	// droplet: entry "app/link/passwd": unsafe path: goes through the symbolic link "app/link"
}

// ExampleWriteTree writes a small synthetic app tree.
func ExampleWriteTree() {
	tmp, err := os.MkdirTemp("", "droplettest-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	st, err := droplettest.WriteTree(filepath.Join(tmp, "app"), droplettest.TreeSpec{Bytes: 1 << 20, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Files > 50, st.Symlinks > 0, st.Bytes > 1000_000)
	// Output:
	// true true true
}
