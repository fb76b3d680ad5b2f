package main

// The droplet suite (-suite droplet) measures package droplet against GNU
// tar, in one run, on a realistic staged-app tree of 200 MiB that it
// builds with droplettest.WriteTree (about 19,500 small text files in
// 8,600 directories of node_modules, a few 32 MiB binary-like files that
// compress 2:1, symbolic links, empty directories, UTF-8 names):
//
//   - droplet.pack: droplet.Pack of the tree to a file, against
//     `tar -czf` (gzip -6 in a child process); best of two runs each, in
//     the order tar, paaskit, paaskit, tar, so that a machine getting
//     busier or quieter favours neither. droplet.pack.vs_tar is the ratio
//     of the best times (target ≤ 0.5).
//   - droplet.unpack: droplet.Unpack of the droplet Pack wrote, into a new
//     directory, against `tar -xzf` of the same file into an empty one;
//     best of four runs each, alternating as above (target ≤ 0.7 for
//     droplet.unpack.vs_tar). Off tmpfs, no tree is deleted until all runs
//     are done: on ext4, files created soon after many were deleted are
//     much slower to create, which would let the order decide.
//     droplet.unpack.foreign_gzip is Unpack of the file tar -czf wrote
//     (one plain gzip stream, which cannot be inflated on several cores).
//   - droplet.download: Registry.Download of a 100 MiB droplet from a
//     local HTTP blob store (droplettest.Server), median of three; then
//     100 concurrent Downloads of it into the emptied registry:
//     droplet.download_dedup.transfers counts the GETs the server answered
//     with the droplet (target 1), .verified the callers that got it with
//     the right SHA-1 and size (target 100), .p50 and .p90 their times,
//     .vs_single p50 over the single download (target ≤ 1.2).
//   - droplet.unpack_1g.rss: the peak resident memory of a process that
//     unpacks a droplet of 1 GiB (1.07 GiB of files, most of them large
//     and random) from a pipe (target ≤ 64 MiB). That process is this
//     binary re-executed (/proc/self/exe, argv[0] "paaskit-bench-droplet-
//     unpack", a moby/sys/reexec entry point that container.Init in main
//     dispatches), which runs droplet.Unpack on its stdin, then reads its
//     own VmHWM in /proc/self/status: the peak of everything it had
//     resident, Go runtime and binary included, not the page cache. (Not
//     ru_maxrss from wait4: Go starts children with vfork, and exec
//     carries the parent's high-water mark into the child's ru_maxrss,
//     so it would report this process's peak; it is printed as a
//     comment.) The parent generates the droplet as the child reads it,
//     so it never touches the disk.
//
// It works in $PAASKIT_BENCH_DIR when set, else in /dev/shm when that is
// a tmpfs with 6 GiB free, else in the default temporary directory. On
// the 2-core VM this was written on, files on the shared ext4 disk took
// one to six times longer to create from one run to the next, depending
// on what other processes had deleted, so the figures would measure the
// neighbours; on tmpfs they measure the programs. The suite holds about
// 1.1 GiB at its peak on tmpfs (2.5 GiB elsewhere, keeping eight
// unpacked trees) and removes everything, also on error or interrupt.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/reexec"

	"github.com/paaskit/paaskit/droplet"
	"github.com/paaskit/paaskit/droplet/droplettest"
)

// unpackChild is the name of the entry point that unpacks a droplet from
// stdin for the peak-memory figure.
const unpackChild = "paaskit-bench-droplet-unpack"

func init() {
	reexec.Register(unpackChild, unpackChildMain)
}

// childReport is what the unpacking child prints on stdout.
type childReport struct {
	Stats   droplet.UnpackStats
	VmHWMKB int64 // peak resident set size, from /proc/self/status
}

// unpackChildMain runs in the re-executed child: it unpacks the droplet
// on stdin into os.Args[1] and prints a childReport as JSON.
func unpackChildMain() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: "+unpackChild+" DIR < droplet")
		os.Exit(2)
	}
	st, err := droplet.Unpack(context.Background(), os.Stdin, os.Args[1], droplet.Limits{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hwm, err := vmHWM()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(childReport{Stats: st, VmHWMKB: hwm}); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// vmHWM returns the peak resident set size of this process in KiB.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// dropletSuite holds what the droplet suite's steps share.
type dropletSuite struct {
	r     *report
	tmp   string
	tmpfs bool // tmp is on a tmpfs, where deleting costs later runs nothing
}

// runDropletSuite runs the droplet suite (see the comment at the top of
// this file). Everything it writes is removed before it returns.
func runDropletSuite(ctx context.Context, _ config, r *report) (retErr error) {
	base, why := dropletBenchDir()
	tmp, err := os.MkdirTemp(base, "paaskit-bench-droplet-")
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	r.commentf("working in %s (%s)", tmp, why)
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("droplet suite: %w", err))
		}
	}()
	s := &dropletSuite{r: r, tmp: tmp, tmpfs: isTmpfs(tmp)}
	if err := s.packUnpack(ctx); err != nil {
		return err
	}
	if err := s.download(ctx); err != nil {
		return err
	}
	return s.unpack1G(ctx)
}

// dropletBenchDir returns the directory the droplet suite works in, and
// why: $PAASKIT_BENCH_DIR when set; else /dev/shm when it is a tmpfs with
// room for the suite, so that the figures measure the programs rather
// than the disk (on a shared VM, creating files on ext4 varies fivefold
// with what other processes deleted in the last minutes); else the
// default temporary directory.
func dropletBenchDir() (string, string) {
	if d := os.Getenv("PAASKIT_BENCH_DIR"); d != "" {
		return d, "PAASKIT_BENCH_DIR"
	}
	var st syscall.Statfs_t
	if isTmpfs("/dev/shm") && syscall.Statfs("/dev/shm", &st) == nil && int64(st.Bavail)*int64(st.Bsize) > 6<<30 {
		return "/dev/shm", "tmpfs, to measure the programs and not the disk; set PAASKIT_BENCH_DIR to choose"
	}
	return os.TempDir(), "the default temporary directory; set PAASKIT_BENCH_DIR to choose"
}

// isTmpfs reports whether dir is on a tmpfs.
func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	return syscall.Statfs(dir, &st) == nil && int64(st.Type) == tmpfsMagic
}

// bestOf runs paaskit's and the peer's function pairs times each, in
// the order peer, paaskit, paaskit, peer, peer, paaskit... (so that a
// machine getting busier or quieter favours neither), and returns the
// best time of each (nil for the peer when it failed, with the reason
// printed). i numbers the runs; cleanup, when not nil, is called after
// each run, outside the timing.
func (s *dropletSuite) bestOf(ctx context.Context, what string, pairs int, ours, peer func(i int) error, cleanup func(i int)) (best, bestPeer *float64, err error) {
	timeIt := func(f func(int) error, i int) (float64, error) {
		start := time.Now()
		err := f(i)
		d := time.Since(start).Seconds()
		if cleanup != nil {
			cleanup(i) // not timed
		}
		return d, err
	}
	var order []string
	for i := range pairs {
		if i%2 == 0 {
			order = append(order, "peer", "ours")
		} else {
			order = append(order, "ours", "peer")
		}
	}
	var peerErr error
	for i, who := range order {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if who == "ours" {
			d, err := timeIt(ours, i)
			if err != nil {
				return nil, nil, fmt.Errorf("droplet suite: %s: %w", what, err)
			}
			s.r.commentf("%s paaskit: %.2f s", what, d)
			if best == nil || d < *best {
				best = &d
			}
			continue
		}
		if peerErr != nil {
			continue
		}
		d, err := timeIt(peer, i)
		if err != nil {
			peerErr = err
			s.r.commentf("%s gnu-tar: %v", what, err)
			continue
		}
		s.r.commentf("%s gnu-tar: %.2f s", what, d)
		if bestPeer == nil || d < *bestPeer {
			bestPeer = &d
		}
	}
	return best, bestPeer, nil
}

// packUnpack measures Pack and Unpack against tar -czf and tar -xzf.
func (s *dropletSuite) packUnpack(ctx context.Context) error {
	tree := filepath.Join(s.tmp, "tree")
	s.r.commentf("building a 200 MiB app tree in %s", tree)
	st, err := droplettest.WriteTree(tree, droplettest.TreeSpec{Bytes: 200 << 20, Seed: 1})
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	s.r.commentf("tree: %d files, %d directories, %d symbolic links, %d MiB", st.Files, st.Dirs, st.Symlinks, st.Bytes>>20)

	tarPath, tarErr := exec.LookPath("tar")
	tarRun := func(args ...string) error {
		if tarErr != nil {
			return tarErr
		}
		out, err := exec.CommandContext(ctx, tarPath, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tar %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}

	ours := filepath.Join(s.tmp, "droplet.tgz")
	theirs := filepath.Join(s.tmp, "tar.tgz")
	var digest droplet.Digest
	best, peer, err := s.bestOf(ctx, "pack", 2, func(int) error {
		f, err := os.Create(ours)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		digest, err = droplet.Pack(ctx, tree, w)
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, func(int) error {
		return tarRun("-czf", theirs, "-C", tree, ".")
	}, nil)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(theirs); err == nil {
		s.r.commentf("droplet: %d bytes (tar -czf: %d bytes)", digest.Size, fi.Size())
	}
	s.r.addMaybe("droplet.pack.seconds", best, "s")
	s.addPeer("droplet.pack.gnu_tar.seconds", peer, "s")
	s.r.addMaybe("droplet.pack.vs_tar", ratio(best, peer), "ratio")

	// Unpack the same droplet; keep every result until the end.
	out := filepath.Join(s.tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	unpack := func(src, dst string) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = droplet.Unpack(ctx, f, dst, droplet.Limits{})
		return err
	}
	// On tmpfs, each tree is removed after its run; elsewhere they are
	// kept until all runs are done (see the top of this file).
	var forget func(i int)
	if s.tmpfs {
		forget = func(i int) {
			_ = os.RemoveAll(filepath.Join(out, fmt.Sprint("paaskit-", i)))
			_ = os.RemoveAll(filepath.Join(out, fmt.Sprint("tar-", i)))
		}
	}
	best, peer, err = s.bestOf(ctx, "unpack", 4, func(i int) error {
		return unpack(ours, filepath.Join(out, fmt.Sprint("paaskit-", i)))
	}, func(i int) error {
		dst := filepath.Join(out, fmt.Sprint("tar-", i))
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		return tarRun("-xzf", ours, "-C", dst)
	}, forget)
	if err != nil {
		return err
	}
	s.r.addMaybe("droplet.unpack.seconds", best, "s")
	s.addPeer("droplet.unpack.gnu_tar.seconds", peer, "s")
	s.r.addMaybe("droplet.unpack.vs_tar", ratio(best, peer), "ratio")
	if _, err := os.Stat(theirs); err == nil {
		start := time.Now()
		if err := unpack(theirs, filepath.Join(out, "paaskit-foreign")); err != nil {
			return fmt.Errorf("droplet suite: unpack tar -czf output: %w", err)
		}
		s.r.add("droplet.unpack.foreign_gzip.seconds", time.Since(start).Seconds(), "s")
	}
	s.r.commentf("removing the unpacked trees")
	for _, p := range []string{out, tree, ours, theirs} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("droplet suite: %w", err)
		}
	}
	return nil
}

// addPeer records a peer's figure, or n/a.
func (s *dropletSuite) addPeer(name string, v *float64, unit string) {
	if v == nil {
		s.r.addNA(name, unit, "", nil)
		return
	}
	s.r.add(name, *v, unit)
}

// download measures one Download, then 100 concurrent ones of the same
// droplet.
func (s *dropletSuite) download(ctx context.Context) (retErr error) {
	srv, err := droplettest.StartServer(filepath.Join(s.tmp, "blobs"))
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	defer srv.Close()

	// A 100 MiB droplet: 110 MiB of files, most of them random.
	const key = "droplets/bench"
	pr, pw := io.Pipe()
	h := sha1.New()
	go func() {
		_, err := droplettest.WriteTarball(io.MultiWriter(pw, h), droplettest.TreeSpec{Bytes: 110 << 20, Seed: 2, BinaryShare: 0.9, RandomBinaries: true}, droplet.Gzip)
		pw.CloseWithError(err)
	}()
	err = srv.Store.Put(ctx, key, pr)
	pr.CloseWithError(errors.New("done"))
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	sha := hex.EncodeToString(h.Sum(nil))
	info, err := srv.Store.Head(ctx, key)
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	s.r.commentf("download: droplet of %.1f MiB", float64(info.Size)/(1<<20))

	reg, err := droplet.OpenRegistry(filepath.Join(s.tmp, "registry"), droplet.WithHTTPClient(srv.Client()))
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	defer func() { retErr = errors.Join(retErr, reg.Close()) }()
	uri := srv.URL(key)

	var singles []float64
	for range 3 {
		if err := reg.Destroy(ctx, sha); err != nil {
			return fmt.Errorf("droplet suite: %w", err)
		}
		start := time.Now()
		if _, err := reg.Download(ctx, sha, uri); err != nil {
			return fmt.Errorf("droplet suite: download: %w", err)
		}
		singles = append(singles, float64(time.Since(start).Microseconds())/1000)
	}
	single, _ := percentile(singles, 50)
	s.r.add("droplet.download.single", single, "ms")

	if err := reg.Destroy(ctx, sha); err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	before := srv.Transfers(key)
	const n = 100
	times := make([]float64, n)
	verified := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			info, err := reg.Download(ctx, sha, uri)
			elapsed := float64(time.Since(t0).Microseconds()) / 1000
			ok := err == nil && info.SHA1 == sha
			if ok {
				fi, serr := os.Stat(info.Path)
				ok = serr == nil && fi.Size() == info.Size
			}
			mu.Lock()
			defer mu.Unlock()
			times[i] = elapsed
			if ok {
				verified++
			} else if err != nil {
				s.r.commentf("download %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	p50, _ := percentile(times, 50)
	p90, _ := percentile(times, 90)
	s.r.add("droplet.download_dedup.transfers", float64(srv.Transfers(key)-before), "count")
	s.r.add("droplet.download_dedup.verified", float64(verified), "count")
	s.r.add("droplet.download_dedup.p50", p50, "ms")
	s.r.add("droplet.download_dedup.p90", p90, "ms")
	s.r.add("droplet.download_dedup.vs_single", p50/single, "ratio")
	return nil
}

// unpack1G measures the peak RSS of a child process unpacking a 1 GiB
// droplet from a pipe.
func (s *dropletSuite) unpack1G(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		s.r.addNA("droplet.unpack_1g.rss", "MiB", "droplet.unpack_1g", errors.New("measured on Linux only"))
		return nil
	}
	dst := filepath.Join(s.tmp, "unpack-1g")
	cmd := exec.CommandContext(ctx, reexec.Self(), dst)
	cmd.Args[0] = unpackChild
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	s.r.commentf("unpacking a 1 GiB droplet in a child process")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("droplet suite: %w", err)
	}
	cw := &countWriter{w: stdin}
	_, genErr := droplettest.WriteTarball(cw, droplettest.TreeSpec{Bytes: 1100 << 20, Seed: 3, BinaryShare: 0.9, RandomBinaries: true}, droplet.Gzip)
	stdin.Close()
	waitErr := cmd.Wait()
	elapsed := time.Since(start)
	if waitErr != nil || genErr != nil {
		return fmt.Errorf("droplet suite: 1 GiB unpack: %w", errors.Join(waitErr, genErr, errors.New(strings.TrimSpace(stderr.String()))))
	}
	var rep childReport
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		return fmt.Errorf("droplet suite: 1 GiB unpack: child said %q: %w", stdout.String(), err)
	}
	st := rep.Stats
	s.r.commentf("1 GiB unpack: droplet of %.2f GiB, %d files, %.2f GiB of file data, %.1f s", float64(cw.n)/(1<<30), st.Files, float64(st.Bytes)/(1<<30), elapsed.Seconds())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		// Not the figure: through vfork and exec, Linux carries the
		// parent's high-water mark into the child's ru_maxrss.
		s.r.commentf("1 GiB unpack: ru_maxrss %.1f MiB (includes this process's peak before the exec)", float64(ru.Maxrss)/1024)
	}
	s.r.add("droplet.unpack_1g.rss", float64(rep.VmHWMKB)/1024, "MiB")
	return os.RemoveAll(dst)
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
