package natsserver

import (
	"context"

	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server running in this process. It is safe
// for concurrent use.
type Server struct {
	srv      *server.Server
	opts     options
	tmpStore string // removed by Shutdown
	logs     *logAdapter

	shutdownOnce sync.Once
	shutdownDone chan struct{}
}

// Start starts a server and returns once it accepts clients, or with an
// error wrapping [ErrNotReady] if it does not before ctx ends (or fails
// on the way, such as a port in use). Everything it started is stopped
// on error.
func Start(ctx context.Context, opts ...Option) (_ *Server, retErr error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrInvalidConfig, o.port)
	}
	if o.noListener && o.port != 0 {
		return nil, fmt.Errorf("%w: a port without a listener", ErrInvalidConfig)
	}
	if o.maxPayload < 0 {
		return nil, fmt.Errorf("%w: negative max payload", ErrInvalidConfig)
	}
	s := &Server{opts: o, shutdownDone: make(chan struct{})}
	sopts := &server.Options{
		ServerName: o.name,
		Host:       o.host,
		Port:       o.port,
		DontListen: o.noListener,
		MaxPayload: o.maxPayload,
		NoLog:      true,
		NoSigs:     true,
	}
	if o.port == 0 {
		sopts.Port = server.RANDOM_PORT
	}
	if js := o.jetStream; js != nil {
		if js.MaxMemory <= 0 || js.MaxStore <= 0 {
			return nil, fmt.Errorf("%w: JetStream needs positive MaxMemory and MaxStore", ErrInvalidConfig)
		}
		dir := js.StoreDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "paaskit-natsserver-")
			if err != nil {
				return nil, fmt.Errorf("natsserver: JetStream store: %w", err)
			}
			s.tmpStore, dir = tmp, tmp
		}
		sopts.JetStream = true
		sopts.JetStreamMaxMemory = js.MaxMemory
		sopts.JetStreamMaxStore = js.MaxStore
		sopts.StoreDir = dir
	}
	defer func() {
		if retErr != nil && s.tmpStore != "" {
			_ = os.RemoveAll(s.tmpStore)
		}
	}()

	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.srv = srv
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s.logs = &logAdapter{log: logger}
	srv.SetLoggerV2(s.logs, logger.Enabled(ctx, slog.LevelDebug), false, false)

	srv.Start()
	defer func() {
		if retErr != nil {
			_ = s.Shutdown(context.WithoutCancel(ctx))
		}
	}()
	for {
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return s, nil
		}
		if msg := s.logs.fatal(); msg != "" {
			return nil, fmt.Errorf("%w: %s", ErrNotReady, msg)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
}

// ClientURL returns the URL clients connect to ("nats://127.0.0.1:4222"),
// or "" for a server without listener.
func (s *Server) ClientURL() string {
	if s.opts.noListener {
		return ""
	}
	return s.srv.ClientURL()
}

// Port returns the port the server listens on, or 0 without listener.
func (s *Server) Port() int {
	if s.opts.noListener {
		return 0
	}
	if a, ok := s.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// InProcessConn returns a new in-memory client connection to the server;
// it implements nats.InProcessConnProvider (package
// github.com/paaskit/paaskit/nats) and nats.go's interface of the same
// name.
func (s *Server) InProcessConn() (net.Conn, error) {
	select {
	case <-s.shutdownDone:
		return nil, ErrServerClosed
	default:
	}
	return s.srv.InProcessConn()
}

// NATSServer returns the underlying nats-server, for what this package
// does not wrap (monitoring, accounts, JetStream administration).
func (s *Server) NATSServer() *server.Server { return s.srv }

// Shutdown stops the server: clients are disconnected, and Shutdown
// returns once every goroutine of the server has ended and the temporary
// JetStream store is removed, or with ctx's error (the shutdown then goes
// on in the background). It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		go func() {
			defer close(s.shutdownDone)
			s.srv.Shutdown()
			s.srv.WaitForShutdown()
			if s.tmpStore != "" {
				_ = os.RemoveAll(s.tmpStore)
			}
		}()
	})
	select {
	case <-s.shutdownDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("natsserver: shutdown: %w", ctx.Err())
	}
}

// Close is Shutdown without a deadline.
func (s *Server) Close() error { return s.Shutdown(context.Background()) }

// logAdapter is the server's logger: it writes to slog and remembers the
// first fatal error, which nats-server reports through its logger rather
// than as a return value (a port in use, for one).
type logAdapter struct {
	log *slog.Logger
	mu  sync.Mutex
	msg string
}

func (l *logAdapter) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

func (l *logAdapter) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Tracef(format string, v ...any) {
	l.log.Log(context.Background(), slog.LevelDebug-4, fmt.Sprintf(format, v...))
}

func (l *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	if l.msg == "" {
		l.msg = msg
	}
	l.mu.Unlock()
}
