package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// Msg is a received message, decoded and validated.
type Msg[T Message] struct {
	// Subject is the subject it arrived on (useful with wildcard
	// subscriptions such as DEAStart("*")).
	Subject string
	// Reply is the reply subject the sender gave, if any.
	Reply string
	// Data is the message.
	Data T
}

// Handler handles one message. ctx is cancelled when the bus is closed.
// An error it returns is reported to the bus's error handler as a
// [*DeliveryError]; the message is not redelivered (core NATS is
// at-most-once).
type Handler[T Message] func(ctx context.Context, msg *Msg[T]) error

// RequestMsg is a received request, decoded and validated, with the
// means to answer it.
type RequestMsg[Req, Rep Message] struct {
	// Subject is the subject it arrived on.
	Subject string
	// Data is the request.
	Data Req

	reply string
	bus   *Bus
}

// Respond sends rep to the requester. It may be called any number of
// times, also after the handler returned, for as long as the bus is open
// (a DEA answers a staging request twice, and a find.droplet request
// once per instance). rep is validated first. A request sent with
// [Publish] has no reply subject: Respond then returns an error matching
// [ErrInvalidSubject].
func (r *RequestMsg[Req, Rep]) Respond(ctx context.Context, rep Rep) error {
	if r.reply == "" {
		return &SubjectError{Subject: r.Subject, Reason: "request has no reply subject"}
	}
	data, err := Encode(rep)
	if err != nil {
		return err
	}
	return r.bus.publish(ctx, r.reply, "", data)
}

// RequestHandler handles one request; see [Handler].
type RequestHandler[Req, Rep Message] func(ctx context.Context, req *RequestMsg[Req, Rep]) error

// Subscription is a subscription of a [Bus]. Messages that do not decode
// or validate never reach its handler: they are counted and reported to
// the bus's error handler.
type Subscription struct {
	bus     *Bus
	sub     *natsgo.Subscription
	subject string
	queue   string
	sem     chan struct{} // nil with one worker
	track   tracker
	handle  func(*natsgo.Msg)
}

// Publish sends msg on s. It validates msg first and sends nothing if it
// is invalid. Publish does not wait for the server: it returns once the
// message is buffered for sending (use [Bus.Flush] to wait). While the
// connection is down messages are buffered up to the reconnect buffer
// size, and past it Publish fails with [ErrBufferFull]: a message
// Publish accepted is sent when the connection comes back, unless the
// bus is closed first.
func Publish[T Message](ctx context.Context, b *Bus, s Subject[T], msg T) error {
	if err := s.Err(); err != nil {
		return err
	}
	if err := checkSubject(s.name, false); err != nil {
		return err
	}
	data, err := Encode(msg)
	if err != nil {
		return err
	}
	return b.publish(ctx, s.name, "", data)
}

func (b *Bus) publish(ctx context.Context, subject, reply string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nats: publish %q: %w", subject, err)
	}
	if err := b.usableForPublish(); err != nil {
		return err
	}
	var err error
	if reply == "" {
		err = b.nc.Publish(subject, data)
	} else {
		err = b.nc.PublishRequest(subject, reply, data)
	}
	if err != nil {
		return wrapConnErr("publish", subject, err)
	}
	b.published.Add(1)
	return nil
}

// usableForPublish allows publishing during Drain (handlers still reply)
// but not after Close.
func (b *Bus) usableForPublish() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shut {
		return ErrClosed
	}
	return nil
}

// Subscribe calls h for every valid message on s (which may use
// wildcards, as DEAStart("*")). It returns once the server has the
// subscription, so a message published after Subscribe returns is
// delivered; while disconnected it returns at once and the subscription
// is made on reconnect.
func Subscribe[T Message](ctx context.Context, b *Bus, s Subject[T], h Handler[T], opts ...SubscribeOption) (*Subscription, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("nats: subscribe: nil handler")
	}
	return b.subscribe(ctx, s.name, opts, func(sub *Subscription, m *natsgo.Msg) {
		msg, err := decodeUnchecked[T](m.Data, m.Subject)
		if err == nil {
			err = msg.Validate()
		}
		if err != nil {
			b.invalid.Add(1)
			b.report(&DeliveryError{Subject: m.Subject, Queue: sub.queue, Err: err})
			return
		}
		b.delivered.Add(1)
		if err := h(b.ctx, &Msg[T]{Subject: m.Subject, Reply: m.Reply, Data: msg}); err != nil {
			b.handlerErrs.Add(1)
			b.report(&DeliveryError{Subject: m.Subject, Queue: sub.queue, Err: err})
		}
	})
}

// Handle calls h for every valid request on s, which h answers with
// [RequestMsg.Respond]. With [WithQueue], each request goes to one member
// of the group; without, every subscriber gets it and each may answer (as
// DEAs do for dea.find.droplet).
func Handle[Req, Rep Message](ctx context.Context, b *Bus, s RequestSubject[Req, Rep], h RequestHandler[Req, Rep], opts ...SubscribeOption) (*Subscription, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("nats: handle: nil handler")
	}
	return b.subscribe(ctx, s.name, opts, func(sub *Subscription, m *natsgo.Msg) {
		req, err := decodeUnchecked[Req](m.Data, m.Subject)
		if err == nil {
			err = req.Validate()
		}
		if err != nil {
			b.invalid.Add(1)
			b.report(&DeliveryError{Subject: m.Subject, Queue: sub.queue, Err: err})
			return
		}
		b.delivered.Add(1)
		r := &RequestMsg[Req, Rep]{Subject: m.Subject, Data: req, reply: m.Reply, bus: b}
		if err := h(b.ctx, r); err != nil {
			b.handlerErrs.Add(1)
			b.report(&DeliveryError{Subject: m.Subject, Queue: sub.queue, Err: err})
		}
	})
}

func (b *Bus) subscribe(ctx context.Context, subject string, opts []SubscribeOption, handle func(*Subscription, *natsgo.Msg)) (_ *Subscription, retErr error) {
	if err := checkSubject(subject, true); err != nil {
		return nil, err
	}
	o := defaultSubOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.workers < 1 {
		return nil, fmt.Errorf("nats: subscribe %q: workers must be at least 1, got %d", subject, o.workers)
	}
	if o.queue != "" {
		if err := checkSubject(o.queue, false); err != nil {
			return nil, fmt.Errorf("nats: subscribe %q: queue group: %w", subject, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: subscribe %q: %w", subject, err)
	}
	s := &Subscription{bus: b, subject: subject, queue: o.queue}
	s.handle = func(m *natsgo.Msg) { handle(s, m) }
	if o.workers > 1 {
		s.sem = make(chan struct{}, o.workers)
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	var err error
	if o.queue == "" {
		s.sub, err = b.nc.Subscribe(subject, s.onMsg)
	} else {
		s.sub, err = b.nc.QueueSubscribe(subject, o.queue, s.onMsg)
	}
	if err != nil {
		b.mu.Unlock()
		return nil, wrapConnErr("subscribe", subject, err)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		if retErr != nil {
			_ = s.Unsubscribe(context.WithoutCancel(ctx))
		}
	}()

	msgs, bytes := o.pendingMsgs, o.pendingBytes
	if msgs <= 0 {
		msgs = -1
	}
	if bytes <= 0 {
		bytes = -1
	}
	if err := s.sub.SetPendingLimits(msgs, bytes); err != nil {
		return nil, wrapConnErr("subscribe", subject, err)
	}
	if b.nc.IsConnected() {
		if err := b.Flush(ctx); err != nil {
			return nil, fmt.Errorf("nats: subscribe %q: %w", subject, err)
		}
	}
	return s, nil
}

// onMsg runs on the nats.go goroutine of the subscription. With one
// worker it handles the message itself; with more it waits for a free
// worker, so that the messages that wait stay in nats.go's bounded
// pending queue.
func (s *Subscription) onMsg(m *natsgo.Msg) {
	if !s.track.enter() {
		return
	}
	if s.sem == nil {
		defer s.track.leave()
		s.handle(m)
		return
	}
	select {
	case s.sem <- struct{}{}:
	case <-s.bus.ctx.Done():
		s.track.leave()
		return
	}
	go func() {
		defer func() {
			<-s.sem
			s.track.leave()
		}()
		s.handle(m)
	}()
}

// Subject returns the subject subscribed to.
func (s *Subscription) Subject() string { return s.subject }

// Queue returns the queue group, or "".
func (s *Subscription) Queue() string { return s.queue }

// Dropped returns how many messages were dropped because the pending
// queue was full (see [WithPendingLimits]).
func (s *Subscription) Dropped() int {
	n, err := s.sub.Dropped()
	if err != nil {
		return 0
	}
	return n
}

// Unsubscribe stops the subscription now; messages received but not
// handled are discarded. It then waits for running handlers to return or
// for ctx to end. Unsubscribing twice, or after the bus closed, is not an
// error.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	err := s.sub.Unsubscribe()
	s.track.close()
	if err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) && !errors.Is(err, natsgo.ErrBadSubscription) {
		return wrapConnErr("unsubscribe", s.subject, err)
	}
	if err := s.track.wait(ctx); err != nil {
		// Still tracked: Bus.Close waits for the handlers left running.
		return fmt.Errorf("nats: unsubscribe %q: %w", s.subject, err)
	}
	s.forget()
	return nil
}

// Drain stops the subscription gracefully: the server stops sending, the
// messages already received are handled, and Drain returns when the last
// handler returned, or with ctx's error.
func (s *Subscription) Drain(ctx context.Context) error {
	if err := s.drainStart(); err != nil {
		return err
	}
	if err := s.drainWait(ctx); err != nil {
		return err // still tracked, as for Unsubscribe
	}
	s.forget()
	return nil
}

func (s *Subscription) drainStart() error {
	err := s.sub.Drain()
	if err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) && !errors.Is(err, natsgo.ErrBadSubscription) {
		return wrapConnErr("drain", s.subject, err)
	}
	return nil
}

func (s *Subscription) drainWait(ctx context.Context) error {
	closed := s.sub.StatusChanged(natsgo.SubscriptionClosed)
	for s.sub.IsValid() {
		select {
		case <-closed:
		case <-ctx.Done():
			return fmt.Errorf("nats: drain %q: %w", s.subject, ctx.Err())
		case <-time.After(10 * time.Millisecond):
			// StatusChanged drops events nobody waited for; poll too.
		}
	}
	// Now nats.go delivers nothing more: wait for our workers.
	s.track.close()
	if err := s.track.wait(ctx); err != nil {
		return fmt.Errorf("nats: drain %q: %w", s.subject, err)
	}
	return nil
}

func (s *Subscription) forget() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
}
