package callstream

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"weak"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/estela-go/estela-go/sdk/internal/serving"
	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// Socket returns the address and the key of the server's call socket, which
// it opens on the first request.
func (s *server) Socket(context.Context, *callsv1.SocketRequest) (*callsv1.SocketReply, error) {
	s.socketMu.Lock()
	defer s.socketMu.Unlock()
	if s.socket == nil {
		sock, err := openSocket(s)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "call socket: %v", err)
		}
		s.socket = sock
	}
	return &callsv1.SocketReply{Address: s.socket.address, Key: s.socket.key, MaxRequestBytes: maxRequestBytes}, nil
}

// CloseSocket closes the call socket of s, if it has one, with every
// connection to it. A plugin's socket otherwise lives as long as its process.
func CloseSocket(s *grpc.Server) {
	v, ok := servers.Load(weak.Make(s))
	if ok {
		v.(*server).closeSocket()
	}
}

func (s *server) closeSocket() {
	s.socketMu.Lock()
	sock := s.socket
	s.socket = nil
	s.socketMu.Unlock()
	if sock != nil {
		sock.close()
	}
}

// socket is a plugin's call socket: a Unix socket where the server's calls
// are served without gRPC.
type socket struct {
	srv      *server
	listener net.Listener
	address  string
	key      []byte
	// dir is the folder of the socket's file, removed on close; empty for an
	// address in Linux's abstract namespace, which has no file.
	dir string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	// noKeyLog and wrongKeyLog log the connections closed before their key
	// was accepted, and acceptLog the failures to accept a connection.
	noKeyLog, wrongKeyLog, acceptLog logLimiter
}

// openSocket listens on a new Unix socket and serves srv's calls there.
func openSocket(srv *server) (*socket, error) {
	key := make([]byte, keyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	sock := &socket{srv: srv, key: key, conns: make(map[net.Conn]struct{})}
	var err error
	if runtime.GOOS == "linux" {
		// An abstract address leaves no file behind when the process is killed.
		// Any local process may connect to it, and the key keeps them out.
		name := make([]byte, 16)
		if _, err := rand.Read(name); err != nil {
			return nil, err
		}
		sock.address = "@estela-calls-" + hex.EncodeToString(name)
		sock.listener, err = net.Listen("unix", sock.address)
	} else {
		// NOTE: a plugin that is killed leaves this folder behind. This branch
		// has not run on another system than Linux.
		if sock.dir, err = os.MkdirTemp("", "estela-calls-"); err != nil {
			return nil, err
		}
		sock.address = filepath.Join(sock.dir, "calls.sock")
		if sock.listener, err = net.Listen("unix", sock.address); err != nil {
			_ = os.RemoveAll(sock.dir)
		}
	}
	if err != nil {
		return nil, err
	}
	go sock.accept()
	return sock, nil
}

// accept serves each connection in goroutines of its own, until the socket
// closes.
func (sock *socket) accept() {
	for {
		conn, err := sock.listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, for one: wait for some to be freed.
			sock.acceptLog.warn("call socket: accept a connection failed, trying again", "failures", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !sock.track(conn) {
			_ = conn.Close()
			return
		}
		go sock.serve(conn)
	}
}

// track records conn, so that close closes it, and reports whether the socket
// is still open.
func (sock *socket) track(conn net.Conn) bool {
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if sock.closed {
		return false
	}
	sock.conns[conn] = struct{}{}
	return true
}

func (sock *socket) close() {
	sock.mu.Lock()
	sock.closed = true
	conns := sock.conns
	sock.conns = nil
	sock.mu.Unlock()
	_ = sock.listener.Close()
	for conn := range conns {
		_ = conn.Close()
	}
	if sock.dir != "" {
		_ = os.RemoveAll(sock.dir)
	}
}

// serve checks the key a connection starts with, then runs its calls one
// after the other. This goroutine reads the requests and another runs them,
// so that a connection the host closes cancels the call running on it.
func (sock *socket) serve(conn net.Conn) {
	defer func() {
		sock.mu.Lock()
		delete(sock.conns, conn)
		sock.mu.Unlock()
		_ = conn.Close()
	}()
	if !sock.checkKey(conn) {
		return
	}
	r := bufio.NewReader(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	requests := make(chan *callsv1.Request)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sock.run(ctx, conn, requests)
	}()
	defer func() {
		close(requests)
		cancel()
		<-done
	}()

	var buf []byte
	for {
		req := &callsv1.Request{}
		var err error
		// A read error ends the connection: the host closed it, or sent a
		// request over the limit, which it never does.
		if buf, err = readFrame(r, req, buf, maxRequestBytes); err != nil {
			return
		}
		select {
		case requests <- req:
		case <-done:
			return
		}
	}
}

// checkKey reads the key a connection starts with, and accepts it when it is
// the socket's. It reports whether it did.
func (sock *socket) checkKey(conn net.Conn) bool {
	if err := conn.SetDeadline(time.Now().Add(keyTimeout)); err != nil {
		return false
	}
	key := make([]byte, keyBytes)
	if _, err := io.ReadFull(conn, key); err != nil {
		sock.noKeyLog.warn("call socket: closed a connection that did not send the whole key", "connections", err)
		return false
	}
	if subtle.ConstantTimeCompare(key, sock.key) != 1 {
		sock.wrongKeyLog.warn("call socket: closed a connection that sent a wrong key", "connections", nil)
		return false
	}
	if _, err := conn.Write([]byte{keyAccepted}); err != nil {
		return false
	}
	return conn.SetDeadline(time.Time{}) == nil
}

// run runs the calls it receives and writes their replies, until the
// requests end or a reply cannot be written.
func (sock *socket) run(ctx context.Context, conn net.Conn, requests <-chan *callsv1.Request) {
	var buf []byte
	for req := range requests {
		// A reply over the host's limit fails there, as it does over gRPC. One
		// over what a frame holds fails here.
		reply := sock.srv.run(ctx, req)
		var err error
		buf, err = writeFrame(conn, reply, buf, maxFrameBytes)
		if status.Code(err) == codes.ResourceExhausted {
			buf, err = writeFrame(conn, failed(err), buf, maxFrameBytes)
		}
		if err != nil {
			_ = conn.Close()
			return
		}
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
	}
}

// logEvery is the least time between two log lines of a logLimiter.
const logEvery = time.Minute

// logLimiter writes warnings to the plugin's log, one per logEvery at most,
// each with the number of events since the previous line, this one's
// included. Anyone who can reach the socket can make the events, so they must
// not flood the log. Events after the last line are counted in the next one.
type logLimiter struct {
	mu     sync.Mutex
	last   time.Time
	events int
}

// warn counts an event, and logs msg with the count under countKey and with
// err, unless a line was logged less than logEvery ago.
func (l *logLimiter) warn(msg, countKey string, err error) {
	l.mu.Lock()
	l.events++
	if time.Since(l.last) < logEvery {
		l.mu.Unlock()
		return
	}
	events := l.events
	l.events = 0
	l.last = time.Now()
	l.mu.Unlock()
	args := []any{countKey, events}
	if err != nil {
		args = append(args, "error", err)
	}
	serving.Logger().Warn(msg, args...)
}
