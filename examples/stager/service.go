package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/staging"
)

// Errors replied to requests the service does not stage.
var (
	// ErrBusy: the worker pool and its queue are full.
	ErrBusy = errors.New("stager: busy, staging queue full; retry later")
	// ErrShuttingDown: the service is stopping; the request was not
	// started and may be sent again.
	ErrShuttingDown = errors.New("stager: shutting down, request not started; retry later")
	// ErrServiceClosed is returned by Run after Shutdown.
	ErrServiceClosed = errors.New("stager: service closed")
)

// Deps are what a Service uses but does not own.
type Deps struct {
	// Bus is the NATS connection; required. The caller closes it after
	// Shutdown.
	Bus *nats.Bus
	// Containers makes the staging containers (*container.Manager);
	// required for script buildpacks.
	Containers staging.Containers
	// HTTPClient fetches packages and uploads droplets; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Logger is for the service's own diagnostics; nil discards.
	Logger *slog.Logger
}

// Service is the stager: see the package documentation. Create it with
// New, start it with Run and stop it with Shutdown. Its methods are safe for
// concurrent use.
type Service struct {
	cfg     Config
	bus     *nats.Bus
	stager  *staging.Stager
	log     *slog.Logger
	logDir  string
	metrics metrics

	queue chan *task
	quit  chan struct{} // closed by Shutdown: workers stop taking tasks
	ready chan struct{} // closed when subscribed and serving
	done  chan struct{} // closed when Shutdown has finished

	// stagingCtx is the parent of every staging; cancelled when Shutdown's
	// deadline passes.
	stagingCtx    context.Context
	cancelStaging context.CancelFunc

	// intake orders receive's enqueue against Shutdown setting closing, so
	// that nothing is queued after Shutdown emptied the queue.
	intake   sync.Mutex
	closing  atomic.Bool
	started  atomic.Bool
	workers  sync.WaitGroup
	shutOnce sync.Once
	shutErr  error

	mu      sync.Mutex // guards subs, running, httpSrv, baseURL
	subs    []*natsgo.Subscription
	running map[string]*task
	httpSrv *http.Server
	baseURL string
}

// task is one request, from receipt to its final reply.
type task struct {
	kind    kind
	id      string
	reply   string
	appID   string
	req     staging.Request
	logPath string
	queued  time.Time
	replied atomic.Bool
	done    chan struct{}
}

// New returns a Service for cfg (defaults applied, see ParseConfig) with
// deps. It creates the work directory and the staging.Stager but does not
// subscribe: Run does.
func New(cfg Config, deps Deps) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Bus == nil {
		return nil, fmt.Errorf("%w: no bus", ErrInvalidConfig)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	logDir := filepath.Join(cfg.WorkDir, "logs")
	wsDir := filepath.Join(cfg.WorkDir, "workspaces")
	for _, d := range []string{logDir, wsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("stager: %w", err)
		}
	}
	opts := []staging.Option{staging.WithWorkDir(wsDir), staging.WithLogger(log)}
	if c := cfg.Container; c.MemoryMB > 0 && c.DiskMB > 0 && c.FDs > 0 {
		opts = append(opts, staging.WithDefaultLimits(c.MemoryMB, c.DiskMB, c.FDs))
	}
	if cfg.BuildpacksDir != "" {
		opts = append(opts, staging.WithAdminBuildpacks(cfg.BuildpacksDir))
	}
	if deps.HTTPClient != nil {
		opts = append(opts, staging.WithHTTPClient(deps.HTTPClient))
	}
	for name, sc := range cfg.Stacks {
		st := staging.Stack{RootFS: sc.RootFS, User: sc.User, UID: sc.UID, GID: sc.GID}
		if sc.Host {
			hs, err := staging.HostStack(sc.RootFS)
			if err != nil {
				return nil, fmt.Errorf("stager: stack %q: %w", name, err)
			}
			st = hs
		}
		opts = append(opts, staging.WithStack(name, st))
	}
	st, err := staging.New(deps.Containers, opts...)
	if err != nil {
		return nil, fmt.Errorf("stager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg:           cfg,
		bus:           deps.Bus,
		stager:        st,
		log:           log,
		logDir:        logDir,
		queue:         make(chan *task, cfg.QueueSize),
		quit:          make(chan struct{}),
		ready:         make(chan struct{}),
		done:          make(chan struct{}),
		stagingCtx:    ctx,
		cancelStaging: cancel,
		running:       map[string]*task{},
	}
	s.metrics.failed = map[string]int64{}
	return s, nil
}

// Ready is closed once Run has subscribed and serves HTTP.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// URL returns the base URL of the log and metrics server ("" before Ready).
func (s *Service) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Run subscribes to the queues, starts the workers and the HTTP server and
// blocks until Shutdown was called (it then returns ErrServiceClosed once
// Shutdown finished) or ctx ends (it then shuts down with
// Config.ShutdownTimeout and returns Shutdown's error). Run may be called
// once.
func (s *Service) Run(ctx context.Context) (retErr error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("stager: Run called twice")
	}
	defer func() {
		if retErr != nil && !errors.Is(retErr, ErrServiceClosed) {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
			defer cancel()
			_ = s.Shutdown(sctx)
		}
	}()
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("stager: listen: %w", err)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	base := s.cfg.PublicURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	s.mu.Lock()
	s.httpSrv, s.baseURL = srv, base
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()

	for range s.cfg.Workers {
		s.workers.Add(1)
		go s.work()
	}
	conn := s.bus.Conn()
	for _, q := range s.cfg.Queues {
		sub, err := conn.QueueSubscribe(q, q, s.receive)
		if err != nil {
			return fmt.Errorf("stager: subscribe %q: %w", q, err)
		}
		// Nothing is dropped silently: the queue, not the client, bounds work.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return fmt.Errorf("stager: subscribe %q: %w", q, err)
		}
		s.mu.Lock()
		s.subs = append(s.subs, sub)
		s.mu.Unlock()
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("stager: subscribe: %w", err)
	}
	s.log.Info("stager ready", "queues", s.cfg.Queues, "workers", s.cfg.Workers, "http", base)
	close(s.ready)

	select {
	case <-s.done:
		return ErrServiceClosed
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			return err
		}
		return ErrServiceClosed
	}
}

// receive runs on the subscription's goroutine: it decodes, then queues
// the request or answers it at once. It never blocks on staging.
func (s *Service) receive(m *natsgo.Msg) {
	if m.Reply == "" {
		s.metrics.add(ErrTypeMalformed)
		s.log.Warn("request without reply subject dropped", "subject", m.Subject)
		return
	}
	k, taskID, v1, dea, err := decodeRequest(m.Data)
	t := &task{kind: k, id: taskID, reply: m.Reply, queued: time.Now(), done: make(chan struct{})}
	if t.id == "" {
		t.id = newTaskID()
	}
	if err != nil {
		s.log.Warn("malformed request", "subject", m.Subject, "err", err)
		s.finish(t, nil, err)
		return
	}
	if v1 != nil {
		t.req, t.appID = s.v1Request(v1), string(v1.AppID)
	} else {
		t.req, t.appID = s.deaRequest(dea), dea.AppID
	}
	t.logPath = filepath.Join(s.logDir, logName(t.id))
	s.intake.Lock()
	var refuse error
	if s.closing.Load() {
		refuse = ErrShuttingDown
	} else {
		s.metrics.queued.Add(1)
		select {
		case s.queue <- t:
		default:
			s.metrics.queued.Add(-1)
			refuse = ErrBusy
		}
	}
	s.intake.Unlock()
	if refuse != nil {
		s.finish(t, nil, refuse)
	}
}

// work is one worker of the pool.
func (s *Service) work() {
	defer s.workers.Done()
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		select {
		case <-s.quit:
			return
		case t := <-s.queue:
			s.metrics.queued.Add(-1)
			if s.closing.Load() {
				s.finish(t, nil, ErrShuttingDown)
				continue
			}
			s.stage(t)
		}
	}
}

// stage runs one task and sends its replies.
func (s *Service) stage(t *task) {
	s.metrics.running.Add(1)
	defer s.metrics.running.Add(-1)
	s.mu.Lock()
	s.running[t.id] = t
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, t.id)
		s.mu.Unlock()
	}()
	log := s.log.With("task", t.id, "app", t.appID)
	f, err := os.OpenFile(t.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		s.finish(t, nil, fmt.Errorf("stager: staging log: %w", err))
		return
	}
	defer f.Close()
	out := &lockedWriter{w: f}
	if t.kind == kindDEA {
		s.publish(t.reply, nats.StagingReply{TaskID: t.id, TaskStreamingLogURL: s.logURL(t.id)})
	}
	// Request.Timeout bounds the staging; the context is a backstop that
	// also ends stagings when Shutdown's deadline passes.
	ctx, cancel := context.WithTimeout(s.stagingCtx, s.cfg.MaxStagingDuration+30*time.Second)
	defer cancel()
	start := time.Now()
	log.Info("staging", "queued_for", start.Sub(t.queued))
	res, err := s.stager.Stage(ctx, t.req, out)
	s.metrics.observe(time.Since(start))
	if err != nil {
		fmt.Fprintf(out, "-----> Staging failed: %v\n", err)
		log.Info("staging failed", "err", err)
	} else {
		log.Info("staged", "sha1", res.DropletSHA1, "took", time.Since(start))
	}
	s.finish(t, res, err)
}

// finish sends t's final reply, once, and counts it.
func (s *Service) finish(t *task, res *staging.Result, err error) {
	if !t.replied.CompareAndSwap(false, true) {
		return
	}
	defer close(t.done)
	if err != nil {
		s.metrics.add(errType(err))
	} else {
		s.metrics.succeeded.Add(1)
	}
	switch t.kind {
	case kindV1:
		rep := V1Reply{TaskID: t.id, TaskLog: readTail(t.logPath, 256<<10)}
		if err != nil {
			msg := "Error staging: " + err.Error()
			rep.Error = &msg
		}
		b, _ := json.Marshal(rep)
		s.publishRaw(t.reply, b)
	case kindDEA:
		rep := nats.StagingReply{TaskID: t.id, AppID: t.appID}
		if err != nil {
			rep.Error = "Error staging: " + err.Error()
			rep.ErrorInfo = &nats.StagingErrorInfo{Type: errType(err), Message: err.Error()}
		} else if res != nil {
			rep.DetectedBuildpack = res.DetectedBuildpack
			rep.BuildpackKey = res.BuildpackKey
			rep.DropletSHA1 = res.DropletSHA1
			rep.DetectedStartCommand = res.StartCommand
			if len(res.ProcessTypes) > 0 {
				rep.Procfile, _ = json.Marshal(res.ProcessTypes)
			}
		}
		s.publish(t.reply, rep)
	}
}

func (s *Service) publish(reply string, rep nats.StagingReply) {
	if rep.TaskID == "" {
		rep.TaskID = newTaskID()
	}
	b, err := nats.Encode(rep)
	if err != nil {
		s.log.Error("encode reply", "err", err)
		return
	}
	s.publishRaw(reply, b)
}

func (s *Service) publishRaw(reply string, b []byte) {
	if err := s.bus.Conn().Publish(reply, b); err != nil {
		s.log.Error("reply", "subject", reply, "err", err)
	}
}

// Shutdown stops the service: it stops receiving (requests already
// received but not queued are answered with ErrShuttingDown), lets running
// stagings finish until ctx ends and then cancels them (they are answered
// with their error), and answers every queued request with ErrShuttingDown.
// Every request received gets exactly one final reply. It returns ctx's
// error if stagings had to be cancelled. It may be called more than once;
// later calls wait for the first and return its result.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.intake.Lock()
		s.closing.Store(true)
		s.intake.Unlock()
		s.mu.Lock()
		subs := s.subs
		s.mu.Unlock()
		// Drain: messages the client holds still reach receive, which
		// answers them with ErrShuttingDown.
		for _, sub := range subs {
			_ = sub.Drain()
		}
		for _, sub := range subs {
			for sub.IsValid() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
		close(s.quit)
		waited := make(chan struct{})
		go func() { s.workers.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			s.shutErr = fmt.Errorf("stager: shutdown: running stagings cancelled: %w", ctx.Err())
			s.cancelStaging()
			<-waited
		}
		// Hand back what is still queued.
		for {
			select {
			case t := <-s.queue:
				s.metrics.queued.Add(-1)
				s.finish(t, nil, ErrShuttingDown)
				continue
			default:
			}
			break
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.bus.Flush(fctx)
		s.mu.Lock()
		srv := s.httpSrv
		s.mu.Unlock()
		if srv != nil {
			_ = srv.Shutdown(fctx)
		}
		s.cancelStaging()
		close(s.done)
	})
	<-s.done
	return s.shutErr
}

func newTaskID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
