package droplet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/paaskit/paaskit/droplet"
)

// Example packs a staged app, imports it into a registry, and unpacks it
// for an instance that holds a reference while it runs.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "droplet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// A staged app, as a stager leaves it.
	staged := filepath.Join(tmp, "staged")
	for name, body := range map[string]string{
		"app/Procfile":     "web: ./server\n",
		"staging_info.yml": `{"detected_buildpack":"go","start_command":"./server"}`,
	} {
		if err := os.MkdirAll(filepath.Join(staged, filepath.Dir(name)), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(staged, name), []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	for _, d := range []string{"logs", "tmp"} {
		if err := os.Mkdir(filepath.Join(staged, d), 0o755); err != nil {
			log.Fatal(err)
		}
	}

	// Pack it; fixed times make the SHA-1 depend on the content only.
	var buf bytes.Buffer
	digest, err := droplet.Pack(ctx, staged, &buf, droplet.WithModTime(time.Unix(0, 0)))
	if err != nil {
		log.Fatal(err)
	}

	// Keep it in the registry under its SHA-1.
	reg, err := droplet.OpenRegistry(filepath.Join(tmp, "dea"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	info, err := reg.Put(ctx, digest.SHA1, &buf)
	if err != nil {
		log.Fatal(err)
	}

	// An instance uses it.
	ref, err := reg.Acquire(info.SHA1, "instance-0")
	if err != nil {
		log.Fatal(err)
	}
	defer ref.Release()
	f, err := os.Open(ref.Path())
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	st, err := droplet.Unpack(ctx, f, filepath.Join(tmp, "instance-0"), droplet.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Format, st.Files, "files,", st.Dirs, "directories")
	fmt.Println(errors.Is(reg.Destroy(ctx, info.SHA1), droplet.ErrInUse))
	// Output:
	// gzip 2 files, 3 directories
	// true
}

// ExampleUnpack shows a hostile droplet refused: the error names the
// entry, and nothing is left of the destination. (testdata/zip-slip.tgz
// was written with droplettest.WriteEntries; droplettest.HostileTarballs
// has many more.)
func ExampleUnpack() {
	tmp, err := os.MkdirTemp("", "droplet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	evil, err := os.ReadFile(filepath.Join("testdata", "zip-slip.tgz"))
	if err != nil {
		log.Fatal(err)
	}
	dst := filepath.Join(tmp, "app")
	_, err = droplet.Unpack(context.Background(), bytes.NewReader(evil), dst, droplet.Limits{})
	var ee *droplet.EntryError
	if errors.As(err, &ee) && errors.Is(err, droplet.ErrUnsafePath) {
		fmt.Println("refused", ee.Name)
	}
	_, statErr := os.Stat(dst)
	fmt.Println(errors.Is(statErr, os.ErrNotExist))
	// Output:
	// refused ../../etc/cron.d/evil
	// true
}

// ExampleRegistry_Download downloads a droplet from a blob store served
// over HTTP; a second call finds it in the registry.
func ExampleRegistry_Download() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "droplet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	store, err := droplet.NewDirStore(filepath.Join(tmp, "blobs"))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/blobs", droplet.NewHandler(store)))
	defer srv.Close()

	// What Cloud Controller would hold: a droplet and its SHA-1.
	const sha1 = "0a4d55a8d778e5022fab701977c5d840bbc486d0" // of "Hello World"
	if err := store.Put(ctx, "droplets/app", bytes.NewReader([]byte("Hello World"))); err != nil {
		log.Fatal(err)
	}

	reg, err := droplet.OpenRegistry(filepath.Join(tmp, "dea"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	info, err := reg.Download(ctx, sha1, srv.URL+"/blobs/droplets/app")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Size, reg.Has(sha1))

	// A wrong SHA-1 stores nothing.
	_, err = reg.Download(ctx, "da39a3ee5e6b4b0d3255bfef95601890afd80709", srv.URL+"/blobs/droplets/app")
	var mismatch *droplet.HashMismatchError
	fmt.Println(errors.As(err, &mismatch), mismatch.Actual == sha1)
	// Output:
	// 11 true
	// true true
}

// ExampleUpload uploads a droplet the way stagers uploaded to Cloud
// Controller, to a Handler that stores it.
func ExampleUpload() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "droplet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	store, err := droplet.NewDirStore(tmp)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(droplet.NewHandler(store))
	defer srv.Close()

	err = droplet.Upload(ctx, nil, srv.URL+"/droplets/app-guid", bytes.NewReader([]byte("droplet bytes")))
	if err != nil {
		log.Fatal(err)
	}
	info, err := store.Head(ctx, "droplets/app-guid")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Key, info.Size)
	// Output:
	// droplets/app-guid 13
}
