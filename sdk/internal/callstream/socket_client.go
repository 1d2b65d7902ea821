package callstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// socketIdleTimeout is how long a connection to the call socket stays open
// without a call. An idle connection costs the plugin two goroutines and no
// stream slot, so it stays longer than an idle stream.
const socketIdleTimeout = 30 * time.Second

// socketRequestTimeout bounds the plugin's reply to the Socket request. A
// plugin that takes longer gets its calls on the streams.
const socketRequestTimeout = 10 * time.Second

var (
	// errSocketDown means the call socket could not be reached: the call, and
	// every later one, goes on the streams.
	errSocketDown = errors.New("call socket unreachable")
	// errRequestTooLarge means the request is over the plugin's limit on the
	// socket: the call goes on a stream, where it fails as a gRPC call would.
	errRequestTooLarge = errors.New("request over the call socket's limit")
)

// callSocket is the plugin's call socket, as its Socket reply gives it, and
// the idle connections to it.
type callSocket struct {
	address    string
	key        []byte
	maxRequest int
	maxReply   int
	// down moves the calls to the streams, because connecting failed with the
	// error it gets.
	down func(error)
	// keyTimeout bounds a new connection and its key exchange.
	keyTimeout time.Duration
	// dialing holds a token for each connection being opened, so that calls
	// that stop waiting for theirs do not open connections without bound.
	dialing chan struct{}

	mu       sync.Mutex
	idle     []*socketConn // the longest idle first
	sweeping bool
	// closed is set once the calls moved to the streams or the connection to
	// the plugin shut down: a connection whose call returns is closed then.
	closed bool
}

// socket returns the plugin's call socket, requesting it from the plugin on
// the first call. It returns nil when the plugin has none, or when the calls
// are to go on the streams. The request runs on its own, bounded by
// socketRequestTimeout, so that calls with shorter deadlines do not cut every
// request short. Calls wait for its reply, or until their context ends, and
// then socket returns the context's error.
func (c *Conn) socket(ctx context.Context) (*callSocket, error) {
	if sock := c.sock.Load(); sock != nil || c.sockOff.Load() {
		return sock, nil
	}
	c.mu.Lock()
	// A request may have ended since the first look: its outcome is stored
	// before sockRequest is cleared.
	if sock := c.sock.Load(); sock != nil || c.sockOff.Load() {
		c.mu.Unlock()
		return sock, nil
	}
	pending := c.sockRequest
	if pending == nil {
		pending = make(chan struct{})
		c.sockRequest = pending
		go c.requestSocket(pending)
	}
	c.mu.Unlock()
	select {
	case <-pending:
		return c.sock.Load(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// requestSocket requests the plugin's call socket, stores the outcome and
// closes pending.
func (c *Conn) requestSocket(pending chan struct{}) {
	defer func() {
		c.mu.Lock()
		c.sockRequest = nil
		c.mu.Unlock()
		close(pending)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.socketRequestTimeout)
	defer cancel()
	reply, err := callsv1.NewCallsClient(c.cc).Socket(ctx, &callsv1.SocketRequest{})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		c.log.Warn("the plugin did not reply to the request for its call socket in time, so its calls go on gRPC streams", "waited", c.socketRequestTimeout)
		c.sockOff.Store(true)
		return
	}
	if status.Code(err) == codes.Unimplemented {
		// Plugins built with an SDK without the socket.
		c.log.Debug("the plugin has no call socket, so its calls go on gRPC streams")
		c.sockOff.Store(true)
		return
	}
	if err != nil {
		c.log.Warn("the request for the plugin's call socket failed, so its calls go on gRPC streams", "error", err)
		c.sockOff.Store(true)
		return
	}
	if err := checkSocketReply(reply); err != nil {
		c.log.Warn("the plugin's call socket cannot be used, so its calls go on gRPC streams", "error", err)
		c.sockOff.Store(true)
		return
	}
	sock := &callSocket{address: reply.GetAddress(), key: reply.GetKey(), maxRequest: int(reply.GetMaxRequestBytes()), maxReply: c.maxReply,
		keyTimeout: c.keyTimeout, dialing: make(chan struct{}, maxIdleStreams)}
	sock.down = func(err error) { c.socketDown(sock, err) }
	c.sock.Store(sock)
}

// checkSocketReply returns an error naming the first field of reply that the
// host cannot use.
func checkSocketReply(reply *callsv1.SocketReply) error {
	// The host connects only to an abstract address or to an absolute path,
	// never to one that depends on its working folder.
	if address := reply.GetAddress(); !strings.HasPrefix(address, "@") && !filepath.IsAbs(address) {
		return fmt.Errorf("address %q is neither abstract (@name) nor an absolute path", address)
	}
	if n := len(reply.GetKey()); n != keyBytes {
		return fmt.Errorf("the key has %d bytes, not %d", n, keyBytes)
	}
	if reply.GetMaxRequestBytes() == 0 {
		return errors.New("max_request_bytes is 0")
	}
	return nil
}

// socketDown sends this call and every later one to the streams, because
// connecting to sock failed with err.
func (c *Conn) socketDown(sock *callSocket, err error) {
	c.sockOff.Store(true)
	if c.sock.CompareAndSwap(sock, nil) {
		c.log.Warn("connecting to the plugin's call socket failed, so its calls go on gRPC streams", "address", sock.address, "error", err)
	}
	sock.close()
}

// invoke makes the call r on an idle connection, or on a new one.
func (sock *callSocket) invoke(ctx context.Context, r *callsv1.Request) (*callsv1.Reply, error) {
	for tries := 0; ; tries++ {
		conn, reused := sock.take()
		if conn == nil {
			var err error
			if conn, err = sock.dial(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, status.FromContextError(ctx.Err()).Err()
				}
				return nil, errSocketDown
			}
		}
		answer, sent, reusable, err := conn.call(ctx, r, sock.maxRequest, sock.maxReply)
		if reusable {
			sock.put(conn)
		}
		_, isStatus := status.FromError(err)
		switch {
		case err == nil:
			return answer, nil
		case !sent && status.Code(err) == codes.ResourceExhausted:
			return nil, errRequestTooLarge
		case ctx.Err() != nil:
			return nil, status.FromContextError(ctx.Err()).Err()
		case isStatus:
			return nil, err
		case reused && !sent && tries < maxIdleStreams:
			// An idle connection may have ended. The plugin never runs a request
			// it did not read whole, so another connection can carry it.
			continue
		}
		if closedByPeer(err) {
			return nil, status.Error(codes.Unavailable, "call socket: the plugin closed the connection")
		}
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("call socket: %v", err))
	}
}

// dial opens a connection to the socket. The connection and its key exchange
// run on their own, bounded by keyTimeout, and one that fails moves the calls
// to the streams, whether the call still waits or not. When ctx ends first, a
// connection that opens later goes to the idle pool.
func (sock *callSocket) dial(ctx context.Context) (*socketConn, error) {
	type dialed struct {
		conn *socketConn
		err  error
	}
	select {
	case sock.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if sock.isClosed() {
		<-sock.dialing
		return nil, errSocketDown
	}
	result := make(chan dialed, 1)
	go func() {
		conn, err := sock.connect()
		if err != nil {
			sock.down(err)
		}
		<-sock.dialing
		result <- dialed{conn, err}
	}()
	select {
	case r := <-result:
		return r.conn, r.err
	case <-ctx.Done():
		go func() {
			if r := <-result; r.err == nil {
				sock.put(r.conn)
			}
		}()
		return nil, ctx.Err()
	}
}

// connect opens a connection to the socket, sends the key and waits until the
// plugin accepts it, for keyTimeout at most.
func (sock *callSocket) connect() (_ *socketConn, err error) {
	conn, err := net.DialTimeout("unix", sock.address, sock.keyTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = conn.Close()
		}
	}()
	if err := conn.SetDeadline(time.Now().Add(sock.keyTimeout)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(sock.key); err != nil {
		return nil, fmt.Errorf("send the key: %w", err)
	}
	var accepted [1]byte
	if _, err := io.ReadFull(conn, accepted[:]); errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("the plugin did not accept the key within %s", sock.keyTimeout)
	} else if err != nil {
		return nil, fmt.Errorf("the plugin did not accept the key: %w", err)
	}
	if accepted[0] != keyAccepted {
		return nil, fmt.Errorf("the plugin sent %#x after the key, not %#x", accepted[0], keyAccepted)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return &socketConn{conn: conn, r: bufio.NewReader(conn)}, nil
}

// take returns the connection that was idle last, and whether there was one.
func (sock *callSocket) take() (*socketConn, bool) {
	sock.mu.Lock()
	defer sock.mu.Unlock()
	n := len(sock.idle)
	if n == 0 {
		return nil, false
	}
	conn := sock.idle[n-1]
	sock.idle = sock.idle[:n-1]
	return conn, true
}

// put keeps conn for the next call. Past maxIdleStreams it closes the
// connection idle longest.
func (sock *callSocket) put(conn *socketConn) {
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if sock.closed {
		_ = conn.conn.Close()
		return
	}
	conn.idleSince = time.Now()
	sock.idle = append(sock.idle, conn)
	if len(sock.idle) > maxIdleStreams {
		_ = sock.idle[0].conn.Close()
		sock.idle = sock.idle[1:]
	}
	if !sock.sweeping {
		sock.sweeping = true
		go sock.sweep()
	}
}

// sweep closes the connections idle for socketIdleTimeout, and returns when
// none is idle.
func (sock *callSocket) sweep() {
	for {
		time.Sleep(socketIdleTimeout / 2)
		sock.mu.Lock()
		n := 0
		for n < len(sock.idle) && time.Since(sock.idle[n].idleSince) >= socketIdleTimeout {
			_ = sock.idle[n].conn.Close()
			n++
		}
		sock.idle = sock.idle[n:]
		if len(sock.idle) == 0 {
			sock.sweeping = false
			sock.mu.Unlock()
			return
		}
		sock.mu.Unlock()
	}
}

func (sock *callSocket) isClosed() bool {
	sock.mu.Lock()
	defer sock.mu.Unlock()
	return sock.closed
}

// close closes the idle connections, and those whose calls return later.
func (sock *callSocket) close() {
	sock.mu.Lock()
	sock.closed = true
	idle := sock.idle
	sock.idle = nil
	sock.mu.Unlock()
	for _, conn := range idle {
		_ = conn.conn.Close()
	}
}

// socketConn is a connection to the call socket that carries one call at a
// time.
type socketConn struct {
	conn net.Conn
	r    *bufio.Reader
	// wbuf and rbuf are the scratch space of the frames written and read.
	wbuf, rbuf []byte
	// idleSince is when the connection's last call returned.
	idleSince time.Time
}

// call sends r and reads its reply. When ctx ends first, it closes the
// connection, which cancels the call in the plugin. It reports whether the
// request left, and whether the connection may carry another call.
func (sc *socketConn) call(ctx context.Context, r *callsv1.Request, maxRequest, maxReply int) (answer *callsv1.Reply, sent, reusable bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = sc.conn.Close() })
	sc.wbuf, err = writeFrame(sc.conn, r, sc.wbuf, maxRequest)
	if status.Code(err) == codes.ResourceExhausted {
		// Nothing was written: the connection can carry the next call.
		return nil, false, stop(), err
	}
	sent = err == nil
	if sent {
		answer = &callsv1.Reply{}
		sc.rbuf, err = readFrame(sc.r, answer, sc.rbuf, maxReply)
	}
	if !stop() || err != nil {
		_ = sc.conn.Close()
		return answer, sent, false, err
	}
	if cap(sc.wbuf) > maxKeptBuffer {
		sc.wbuf = nil
	}
	return answer, sent, true, nil
}

// closedByPeer reports whether err means that the plugin closed the
// connection, or that its process ended.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
