package cgroups

import (
	"errors"
	"os"
	"sync"
	"time"
)

// OOMWatcher reports OOM kills in a cgroup, as made by [Cgroup.WatchOOM].
// It owns one goroutine and one file descriptor until
// [OOMWatcher.Close]. Its methods are safe for concurrent use.
type OOMWatcher struct {
	ch   chan uint64
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the goroutine has returned
	file *os.File      // the eventfd (v1) or inotify (v2) descriptor

	err error // why the goroutine stopped early; read after done

	closeOnce sync.Once
	closeErr  error
}

// C returns the channel on which the watcher sends the cgroup's oom_kill
// count each time it grows (and, on v1, when the kernel reports the
// cgroup under OOM with the OOM killer disabled). The channel has a buffer
// of one and never blocks the watcher: a count the receiver has not taken
// yet is replaced by the newer one, so a slow receiver sees the latest
// count, not every step. The channel is closed after [OOMWatcher.Close],
// and earlier when the cgroup is removed or reading its files fails (see
// [OOMWatcher.Err]).
func (w *OOMWatcher) C() <-chan uint64 { return w.ch }

// Err returns the error that stopped the watcher before Close, once C is
// closed; it is nil while the watcher runs, after Close and when the
// watch ended because the cgroup was removed.
func (w *OOMWatcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Close stops the watcher: it closes the file descriptors, waits for the
// goroutine to return and closes C. It is idempotent and returns the same
// error every time. Call it also when C was closed by the cgroup's
// removal, to release the descriptors.
func (w *OOMWatcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		w.closeErr = w.file.Close()
		<-w.done
		if w.closeErr != nil {
			w.closeErr = errors.Join(errors.New("cgroups: close oom watcher"), w.closeErr)
		}
	})
	return w.closeErr
}

// errGone is returned by an oomSource's check when the cgroup's counter
// file has disappeared: the cgroup was removed.
var errGone = errors.New("cgroups: cgroup removed")

// oomSource is the platform side of a watcher.
type oomSource struct {
	// file is read by wait and closed by Close to unblock it.
	file *os.File
	// wait blocks until the kernel signals a change; it returns an error
	// wrapping os.ErrClosed after Close, and gone when the kernel said the
	// watched file is gone.
	wait func() (gone bool, err error)
	// check reads the counter; underOOM reports v1's under_oom 1. It
	// returns errGone when the cgroup is removed.
	check func() (count uint64, underOOM bool, err error)
	// settle is how long to keep re-reading the counter after a
	// notification that did not come with a grown counter.
	settle time.Duration
}

// v1OOMSettle is oomSource.settle on v1: the memory controller signals the
// eventfd before the OOM killer has picked and counted its victim. On v2
// memory.events is notified again after the kill is counted, so there
// is nothing to wait for.
const v1OOMSettle = time.Second

func startOOMWatcher(src oomSource, last uint64) *OOMWatcher {
	w := &OOMWatcher{
		ch:   make(chan uint64, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		file: src.file,
	}
	go w.run(src, last)
	return w
}

func (w *OOMWatcher) run(src oomSource, last uint64) {
	defer close(w.done)
	defer close(w.ch)
	for {
		gone, err := src.wait()
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.err = err
			}
			return
		}
		n, err := w.settle(src, last)
		switch {
		case errors.Is(err, errGone):
			return
		case err != nil:
			w.err = err
			return
		}
		if n > last {
			last = n
		}
		if gone {
			return
		}
	}
}

// settle re-reads the counter after a notification until it grows,
// src.settle passes or Close is called. It sends the count when it grew,
// or when it did not but the cgroup was seen under OOM (v1 with the OOM
// killer disabled: the tasks wait, nothing is killed). It returns the
// count read last.
func (w *OOMWatcher) settle(src oomSource, last uint64) (uint64, error) {
	deadline := time.Now().Add(src.settle)
	delay := time.Millisecond
	sawUnder := false
	for {
		n, under, err := src.check()
		if err != nil {
			return last, err
		}
		sawUnder = sawUnder || under
		if n > last {
			w.send(n)
			return n, nil
		}
		if time.Now().After(deadline) {
			if sawUnder {
				w.send(n)
			}
			return n, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-w.stop:
			t.Stop()
			return n, nil
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// send delivers n without ever blocking: the goroutine is the only sender,
// so after taking a stale value out of the full buffer there is room.
func (w *OOMWatcher) send(n uint64) {
	select {
	case w.ch <- n:
		return
	default:
	}
	select {
	case <-w.ch:
	default:
	}
	w.ch <- n
}

// WatchOOM starts watching the cgroup for OOM kills; see [OOMWatcher.C]
// for what it reports. On v1 it registers an eventfd for the memory
// controller's OOM notification (memory.oom_control through
// cgroup.event_control); the kernel signals it also when the cgroup is
// removed, so each notification is cross-checked against the oom_kill
// counter, re-read for up to a second as the kernel notifies before it
// counts the kill. On v2 it watches memory.events with inotify and
// re-reads the counter on each change. The caller must call
// [OOMWatcher.Close].
func (c *Cgroup) WatchOOM() (*OOMWatcher, error) { return c.watchOOM() }
