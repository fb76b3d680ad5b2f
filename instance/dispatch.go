package instance

import (
	"context"
	"sync"
)

// dispatcher delivers events to the listeners on one goroutine, in the
// order they were queued, outside every lock. The queue has no bound, so
// nothing is dropped and a transition never waits for a listener.
type dispatcher struct {
	mu        sync.Mutex
	queue     []dispatchItem
	listeners []listener
	nextID    int
	closed    bool
	wake      chan struct{}
	done      chan struct{}
}

type listener struct {
	id int
	f  func(Event)
}

// dispatchItem is an event, or a barrier closed when reached.
type dispatchItem struct {
	ev      Event
	barrier chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go d.loop()
	return d
}

func (d *dispatcher) listen(f func(Event)) (remove func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	id := d.nextID
	d.listeners = append(d.listeners, listener{id: id, f: f})
	return sync.OnceFunc(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for i, l := range d.listeners {
			if l.id == id {
				d.listeners = append(d.listeners[:i:i], d.listeners[i+1:]...)
				return
			}
		}
	})
}

// send queues events; after close, or when nobody listens, they are
// dropped.
func (d *dispatcher) send(evs ...Event) {
	d.mu.Lock()
	if d.closed || len(d.listeners) == 0 {
		d.mu.Unlock()
		return
	}
	for _, e := range evs {
		d.queue = append(d.queue, dispatchItem{ev: e})
	}
	d.mu.Unlock()
	d.poke()
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// flush waits until every event queued before the call was delivered, or
// ctx ends.
func (d *dispatcher) flush(ctx context.Context) error {
	ch := make(chan struct{})
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.done
		return nil
	}
	d.queue = append(d.queue, dispatchItem{barrier: ch})
	d.mu.Unlock()
	d.poke()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close delivers what is queued and stops the goroutine.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.poke()
	<-d.done
}

func (d *dispatcher) loop() {
	defer close(d.done)
	var ls []listener
	for range d.wake {
		for {
			d.mu.Lock()
			if len(d.queue) == 0 {
				closed := d.closed
				d.queue = nil
				d.mu.Unlock()
				if closed {
					return
				}
				break
			}
			it := d.queue[0]
			d.queue[0] = dispatchItem{}
			d.queue = d.queue[1:]
			ls = append(ls[:0], d.listeners...)
			d.mu.Unlock()
			if it.barrier != nil {
				close(it.barrier)
				continue
			}
			for _, l := range ls {
				l.f(it.ev)
			}
		}
	}
}
