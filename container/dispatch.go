package container

import "sync"

// dispatcher calls the event handler on one goroutine, in order, outside
// every lock. Events queue without bound; a nil handler drops them.
type dispatcher struct {
	handler func(Event)
	mu      sync.Mutex
	queue   []Event
	wake    chan struct{}
	done    chan struct{}
	closed  bool
}

func newDispatcher(h func(Event)) *dispatcher {
	d := &dispatcher{handler: h, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if h == nil {
		close(d.done)
		return d
	}
	go d.loop()
	return d
}

func (d *dispatcher) send(e Event) {
	if d.handler == nil {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, e)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) loop() {
	defer close(d.done)
	for range d.wake {
		for {
			d.mu.Lock()
			if len(d.queue) == 0 {
				closed := d.closed
				d.mu.Unlock()
				if closed {
					return
				}
				break
			}
			e := d.queue[0]
			d.queue = d.queue[1:]
			d.mu.Unlock()
			d.handler(e)
		}
	}
}

// close delivers what is queued, then stops the goroutine.
func (d *dispatcher) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.done
		return
	}
	d.closed = true
	d.mu.Unlock()
	if d.handler != nil {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	<-d.done
}
