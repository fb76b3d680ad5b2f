package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/paaskit/paaskit/internal/archive"
)

// Example archives a directory, extracts it elsewhere, and shows how an
// archive that tries to climb out of its destination is refused.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "archive-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "start"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.Symlink("bin/start", filepath.Join(src, "start")); err != nil {
		log.Fatal(err)
	}

	var buf bytes.Buffer
	if err := archive.Create(ctx, &buf, src, archive.CreateOptions{}); err != nil {
		log.Fatal(err)
	}

	dest := filepath.Join(tmp, "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		log.Fatal(err)
	}
	st, err := archive.ExtractAuto(ctx, &buf, dest, archive.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d file, %d dir, %d symlink, %d bytes\n", st.Files, st.Dirs, st.Symlinks, st.Bytes)

	// A hostile archive: a link out of the destination, then a file
	// written through it.
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	_ = tw.WriteHeader(&tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: ".."})
	_ = tw.WriteHeader(&tar.Header{Name: "up/evil", Typeflag: tar.TypeReg, Mode: 0o644})
	_ = tw.Close()
	_, err = archive.Extract(ctx, &evil, dest, archive.Options{})
	var ee *archive.EntryError
	if errors.Is(err, archive.ErrUnsafePath) && errors.As(err, &ee) {
		fmt.Println("refused:", ee.Name)
	}
	// Output:
	// 1 file, 1 dir, 1 symlink, 10 bytes
	// refused: up/evil
}
