package nats

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// Request sends req on s and returns the first reply, decoded and
// validated. It waits until a reply arrives or ctx ends (give ctx a
// deadline: Cloud Controller waited 2 s for dea.find.droplet). With no
// subscriber on s it fails at once with [ErrNoResponders]. A reply that
// does not decode is a [*DecodeError]; one that does not validate is
// returned with its validation error.
func Request[Req, Rep Message](ctx context.Context, b *Bus, s RequestSubject[Req, Rep], req Req) (Rep, error) {
	var zero Rep
	data, err := encodeRequest(b, s, req)
	if err != nil {
		return zero, err
	}
	m, err := b.nc.RequestWithContext(ctx, s.name, data)
	if err != nil {
		return zero, wrapConnErr("request", s.name, err)
	}
	b.published.Add(1)
	rep, err := decodeUnchecked[Rep](m.Data, s.name)
	if err != nil {
		b.invalid.Add(1)
		return zero, err
	}
	return rep, rep.Validate()
}

func encodeRequest[Req, Rep Message](b *Bus, s RequestSubject[Req, Rep], req Req) ([]byte, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := checkSubject(s.name, false); err != nil {
		return nil, err
	}
	if err := b.usable(); err != nil {
		return nil, err
	}
	return Encode(req)
}

// Gather bounds the replies [RequestMany] collects. The zero value
// collects until ctx ends.
type Gather struct {
	// Max stops collecting after this many replies; zero means no limit.
	Max int
	// Wait is how long to collect replies, from the request on. Reaching
	// it is the normal end of a request whose number of replies is not
	// known (Cloud Controller's 2 s for dea.find.droplet); zero means
	// until ctx ends.
	Wait time.Duration
}

// RequestMany sends req on s and collects the replies, until g.Max
// replies arrived or g.Wait passed, whichever comes first; both are
// normal ends and return the replies with a nil error. If ctx ends first
// the replies so far are returned with ctx's error. Replies that do not
// decode or validate are left out, counted and reported to the bus's
// error handler. With no subscriber on s it returns [ErrNoResponders] at
// once.
func RequestMany[Req, Rep Message](ctx context.Context, b *Bus, s RequestSubject[Req, Rep], req Req, g Gather) ([]Rep, error) {
	if g.Max < 0 || g.Wait < 0 {
		return nil, fmt.Errorf("nats: request %q: negative Gather bound", s.name)
	}
	data, err := encodeRequest(b, s, req)
	if err != nil {
		return nil, err
	}
	wctx := ctx
	if g.Wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, g.Wait)
		defer cancel()
	}
	var out []Rep
	for rep, err := range replies[Rep](wctx, b, s.name, data) {
		if err != nil {
			if errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalidMessage) {
				b.report(&DeliveryError{Subject: s.name, Err: err})
				continue
			}
			if wctx.Err() != nil && ctx.Err() == nil {
				return out, nil // Wait elapsed
			}
			return out, err
		}
		out = append(out, rep)
		if g.Max > 0 && len(out) >= g.Max {
			break
		}
	}
	return out, nil
}

// Replies sends req on s when the loop starts and yields the replies as
// they come, for requests answered several times over a long time (a
// staging request: the setup reply with the log URL, minutes later the
// completion). Stop with break (after [StagingReply.Final], say) or by
// ending ctx. A reply that does not decode or validate is yielded with
// its error (and, for validation errors, the decoded reply) and the loop
// may go on. An error that ends the request (ctx ended, no responders,
// bus closed, the request invalid) is yielded last.
func Replies[Req, Rep Message](ctx context.Context, b *Bus, s RequestSubject[Req, Rep], req Req) iter.Seq2[Rep, error] {
	return func(yield func(Rep, error) bool) {
		data, err := encodeRequest(b, s, req)
		if err != nil {
			var zero Rep
			yield(zero, err)
			return
		}
		for rep, err := range replies[Rep](ctx, b, s.name, data) {
			if !yield(rep, err) {
				return
			}
		}
	}
}

// replies publishes data on subject with a reply subject of the bus's
// reply mux, and yields what comes back.
func replies[Rep Message](ctx context.Context, b *Bus, subject string, data []byte) iter.Seq2[Rep, error] {
	return func(yield func(Rep, error) bool) {
		var zero Rep
		mux, err := b.replyMux()
		if err != nil {
			yield(zero, err)
			return
		}
		w := mux.register()
		defer mux.unregister(w)
		if err := b.publish(ctx, subject, w.inbox, data); err != nil {
			yield(zero, err)
			return
		}
		for {
			m, err := w.next(ctx, b.done)
			if err != nil {
				yield(zero, fmt.Errorf("nats: request %q: %w", subject, err))
				return
			}
			if isNoResponders(m) {
				yield(zero, fmt.Errorf("nats: request %q: %w", subject, ErrNoResponders))
				return
			}
			rep, err := decodeUnchecked[Rep](m.Data, subject)
			if err == nil {
				err = rep.Validate()
			}
			if err != nil {
				b.invalid.Add(1)
			}
			if !yield(rep, err) {
				return
			}
		}
	}
}

// isNoResponders recognises the status message the server sends to the
// reply subject when a request has no subscriber (nats.go does not export
// the header's name and value).
func isNoResponders(m *natsgo.Msg) bool {
	return len(m.Data) == 0 && m.Header != nil && m.Header.Get("Status") == "503"
}

// replyMux is one wildcard subscription (<inbox>.*) that receives the
// replies of every multi-reply request of a bus, routed by the last
// token; nats.go does the same for single replies. It saves a SUB and an
// UNSUB per request.
type replyMux struct {
	bus    *Bus
	prefix string // "<inbox>."
	sub    *natsgo.Subscription

	mu      sync.Mutex
	next    uint64
	waiters map[string]*replyWaiter
}

type replyWaiter struct {
	token string
	inbox string

	mu    sync.Mutex
	queue []*natsgo.Msg
	wake  chan struct{} // 1-buffered
}

// replyMux returns the bus's reply mux, subscribing it on first use. The
// SUB goes out before the first request on the same connection, so no
// reply can miss it.
func (b *Bus) replyMux() (*replyMux, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shut {
		return nil, ErrClosed
	}
	if b.mux != nil {
		return b.mux, nil
	}
	m := &replyMux{bus: b, prefix: b.nc.NewInbox() + ".", waiters: make(map[string]*replyWaiter)}
	sub, err := b.nc.Subscribe(m.prefix+"*", m.onMsg)
	if err != nil {
		return nil, wrapConnErr("subscribe", m.prefix+"*", err)
	}
	// Replies are routed to unbounded per-request queues right away, so
	// the mux itself never falls behind far.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, wrapConnErr("subscribe", m.prefix+"*", err)
	}
	m.sub = sub
	b.mux = m
	return m, nil
}

func (m *replyMux) register() *replyWaiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	token := strconv.FormatUint(m.next, 36)
	w := &replyWaiter{token: token, inbox: m.prefix + token, wake: make(chan struct{}, 1)}
	m.waiters[token] = w
	return w
}

func (m *replyMux) unregister(w *replyWaiter) {
	m.mu.Lock()
	delete(m.waiters, w.token)
	m.mu.Unlock()
}

func (m *replyMux) onMsg(msg *natsgo.Msg) {
	token, ok := strings.CutPrefix(msg.Subject, m.prefix)
	if !ok {
		return
	}
	m.mu.Lock()
	w := m.waiters[token]
	m.mu.Unlock()
	if w == nil {
		m.bus.lateReplies.Add(1)
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, msg)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next returns the next reply, or an error when ctx ends or the bus
// closes.
func (w *replyWaiter) next(ctx context.Context, closed <-chan struct{}) (*natsgo.Msg, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			m := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return m, nil
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-closed:
			return nil, ErrClosed
		}
	}
}
