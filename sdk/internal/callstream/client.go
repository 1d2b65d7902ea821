// Package callstream carries a plugin's unary gRPC calls on a Unix socket of
// the plugin's, or on streams that stay open (the estela.calls.v1 contract),
// in place of a gRPC call each. A gRPC call sets up an HTTP/2 stream, with
// headers and trailers, for every request. On an open stream a call costs one
// message each way. On the socket it costs one write and one read on each
// side, without HTTP/2 frames or hand-offs between gRPC's goroutines.
//
// The host side is Conn, a grpc.ClientConnInterface that generated clients
// take in place of the connection. It requests the plugin's socket once,
// keeps idle connections to it in a pool, and makes one call at a time on
// each. Without a socket it does the same with streams. The plugin side is
// Register, which serves a service's unary methods on the socket and on the
// streams, next to their gRPC methods. A plugin built with an SDK without the
// socket returns UNIMPLEMENTED, and Conn uses the streams. One without the
// streams ends them with UNIMPLEMENTED, and Conn then makes every call as a
// gRPC call.
package callstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/estela-go/estela-go/sdk/pluginapi"
	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// maxIdleStreams is how many idle streams a Conn keeps. More calls at once
// open more streams, which are closed when their call returns.
const maxIdleStreams = 16

// idleTimeout is how long a stream stays open without a call. Each open
// stream holds one of the plugin's stream slots, which the plugin may limit,
// so idle streams are closed soon: go-plugin's own calls and the streaming
// calls need slots too.
const idleTimeout = time.Second

// Conn sends the unary calls of generated gRPC clients on the plugin's call
// socket or on call streams, and their streaming calls as gRPC calls on the
// connection.
type Conn struct {
	cc  grpc.ClientConnInterface
	log hclog.Logger

	mu sync.Mutex
	// unary is set once the plugin ended a stream with UNIMPLEMENTED.
	unary bool
	// idle holds the idle streams, the longest idle first.
	idle []*callStream
	// opening holds the calls that are opening a stream, the oldest first. A
	// stream that becomes idle stops the oldest opening, which may be waiting
	// for a free slot, so that its call takes the idle stream instead.
	opening []*opening
	// sweeping is set while a goroutine closes the streams idle too long.
	sweeping bool
	// sockRequest is set while the plugin's call socket is requested, and
	// closed when the reply arrives.
	sockRequest chan struct{}

	// sock is the plugin's call socket, once the plugin returned it. sockOff
	// is set when the plugin has none, or when the socket could not be
	// reached. The calls then go on the streams.
	sock    atomic.Pointer[callSocket]
	sockOff atomic.Bool
	// maxReply is the largest reply read on the socket.
	maxReply int
	// socketRequestTimeout bounds the Socket request, and keyTimeout a new
	// connection to the socket with its key exchange.
	socketRequestTimeout, keyTimeout time.Duration

	// generation counts the times the connection left the ready state. The
	// plugin's server sends GOAWAY before it closes a connection, as it does
	// with connections past their age, and the connection leaves the ready
	// state as gRPC moves to a new one. Streams of an older generation are not used again, so calls go
	// to the new connection before the old one closes, as gRPC calls do.
	generation atomic.Int64
}

// opening is a call that is opening a stream.
type opening struct {
	cancel context.CancelFunc
	// stopped is set when a stream became idle and the opening was canceled.
	stopped bool
}

var _ grpc.ClientConnInterface = (*Conn)(nil)

// NewConn returns a Conn that calls the plugin over cc. The connection's
// message size limits apply to the calls on streams as to gRPC calls. log
// receives a line when the plugin's call socket cannot be used; nil discards
// it.
func NewConn(cc grpc.ClientConnInterface, log hclog.Logger) *Conn {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Conn{cc: cc, log: log, maxReply: pluginapi.MaxReplyBytes, socketRequestTimeout: socketRequestTimeout, keyTimeout: keyTimeout}
	if conn, ok := cc.(*grpc.ClientConn); ok {
		go c.watch(conn)
	}
	return c
}

// watch counts the times the connection leaves the ready state, until it
// shuts down. The connection shuts down when the host ends the plugin, so
// watch then closes the connections to the call socket too.
func (c *Conn) watch(conn *grpc.ClientConn) {
	for {
		state := conn.GetState()
		if state == connectivity.Shutdown || !conn.WaitForStateChange(context.Background(), state) {
			c.sockOff.Store(true)
			if sock := c.sock.Swap(nil); sock != nil {
				sock.close()
			}
			return
		}
		if state == connectivity.Ready {
			c.generation.Add(1)
		}
	}
}

// Invoke makes a unary call on the plugin's call socket, or on a stream when
// the plugin has no socket. Calls with options other than grpc.StaticMethod,
// and every call to a plugin without the streams, go through gRPC as before.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	req, reqOK := args.(proto.Message)
	resp, respOK := reply.(proto.Message)
	if !reqOK || !respOK || !onlyStaticMethod(opts) || c.unaryOnly() {
		return c.cc.Invoke(ctx, method, args, reply, opts...)
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return status.Errorf(codes.Internal, "plugin call: encode the request to %s: %v", method, err)
	}

	r := &callsv1.Request{Method: method, Payload: payload}
	if deadline, ok := ctx.Deadline(); ok {
		timeout := time.Until(deadline)
		if timeout <= 0 {
			return status.FromContextError(context.DeadlineExceeded).Err()
		}
		r.TimeoutNanos = int64(timeout)
	}

	sock, err := c.socket(ctx)
	if err != nil {
		return status.FromContextError(err).Err()
	}
	if sock != nil {
		answer, err := sock.invoke(ctx, r)
		switch {
		case errors.Is(err, errSocketDown), errors.Is(err, errRequestTooLarge):
			// The call goes on a stream.
		case err != nil:
			return err
		default:
			return decodeReply(answer, method, resp)
		}
	}

	var answer *callsv1.Reply
	for tries := 0; ; tries++ {
		s, reused, err := c.take(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return streamError(err)
		}
		var sent, reusable bool
		answer, sent, reusable, err = s.call(ctx, r)
		if reusable {
			c.put(s)
		}
		// A stream can end while it is idle. When its connection ended, Send
		// may fail without sending, and another stream can carry the request.
		if err != nil && reused && !sent && ctx.Err() == nil && tries < maxIdleStreams {
			continue
		}
		if err != nil && reused && status.Code(err) == codes.Unavailable {
			// The idle streams may be on the same connection, which the plugin's
			// server may have closed, as it does with connections past their age:
			// close them, so that one call fails instead of one on each.
			c.closeIdle()
		}
		if err != nil {
			return c.callError(ctx, err, func() error { return c.cc.Invoke(ctx, method, args, reply, opts...) })
		}
		break
	}
	return decodeReply(answer, method, resp)
}

// decodeReply returns the error of a failed call, or decodes the reply of
// method into resp.
func decodeReply(answer *callsv1.Reply, method string, resp proto.Message) error {
	if len(answer.GetStatus()) > 0 {
		return decodeStatus(answer.GetStatus())
	}
	if err := proto.Unmarshal(answer.GetPayload(), resp); err != nil {
		return status.Errorf(codes.Internal, "plugin call: decode the reply of %s: %v", method, err)
	}
	return nil
}

// callError turns the error of a call on a stream into the call's error. When
// the plugin does not serve the streams, it makes the call with unary, as it
// makes every later call.
func (c *Conn) callError(ctx context.Context, err error, unary func() error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if status.Code(err) != codes.Unimplemented {
		return streamError(err)
	}
	// Only a plugin without the Calls service ends a stream with
	// UNIMPLEMENTED, before it reads the request; a method's own
	// UNIMPLEMENTED comes in a reply.
	c.mu.Lock()
	c.unary = true
	c.mu.Unlock()
	return unary()
}

// NewStream opens a streaming call as a gRPC call of its own. It first closes
// the idle call streams, so that they do not hold the plugin's stream slots
// when it limits them. Streaming calls are few, and later calls open new ones.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	c.closeIdle()
	return c.cc.NewStream(ctx, desc, method, opts...)
}

// closeIdle closes every idle stream.
func (c *Conn) closeIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, s := range idle {
		s.cancel()
	}
}

// onlyStaticMethod reports whether opts hold nothing but the StaticMethod
// option that generated clients add to every call.
func onlyStaticMethod(opts []grpc.CallOption) bool {
	for _, opt := range opts {
		if _, ok := opt.(grpc.StaticMethodCallOption); !ok {
			return false
		}
	}
	return true
}

func (c *Conn) unaryOnly() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unary
}

// take returns the stream that was idle last, or opens one. It reports
// whether the stream carried calls before.
func (c *Conn) take(ctx context.Context) (*callStream, bool, error) {
	for {
		generation := c.generation.Load()
		c.mu.Lock()
		for n := len(c.idle); n > 0; n = len(c.idle) {
			s := c.idle[n-1]
			c.idle = c.idle[:n-1]
			if s.generation == generation {
				c.mu.Unlock()
				return s, true, nil
			}
			s.cancel()
		}
		// A stream outlives the call that opens it, so it gets a context of its
		// own. The call's context bounds only the wait for a free slot.
		streamCtx, cancel := context.WithCancel(context.Background())
		o := &opening{cancel: cancel}
		c.opening = append(c.opening, o)
		c.mu.Unlock()

		stop := context.AfterFunc(ctx, cancel)
		stream, err := callsv1.NewCallsClient(c.cc).Stream(streamCtx)
		stop()
		c.mu.Lock()
		stopped := o.stopped
		c.opening = slices.DeleteFunc(c.opening, func(other *opening) bool { return other == o })
		c.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			cancel()
			return nil, false, ctx.Err()
		case stopped:
			cancel()
			continue // a stream became idle: take it
		case err != nil:
			cancel()
			return nil, false, err
		}
		return &callStream{stream: stream, cancel: cancel, generation: generation}, false, nil
	}
}

// put keeps s for the next call, and stops the oldest opening so that its call
// takes s. Past maxIdleStreams it closes the stream idle longest.
func (c *Conn) put(s *callStream) {
	if s.generation != c.generation.Load() {
		s.cancel()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.idleSince = time.Now()
	c.idle = append(c.idle, s)
	if len(c.opening) > 0 {
		o := c.opening[0]
		c.opening = c.opening[1:]
		o.stopped = true
		o.cancel()
	}
	if len(c.idle) > maxIdleStreams {
		c.idle[0].cancel()
		c.idle = c.idle[1:]
	}
	if !c.sweeping {
		c.sweeping = true
		go c.sweep()
	}
}

// sweep closes the streams idle for idleTimeout, and returns when none is idle.
func (c *Conn) sweep() {
	for {
		time.Sleep(idleTimeout / 2)
		c.mu.Lock()
		n := 0
		for n < len(c.idle) && time.Since(c.idle[n].idleSince) >= idleTimeout {
			c.idle[n].cancel()
			n++
		}
		c.idle = c.idle[n:]
		if len(c.idle) == 0 {
			c.sweeping = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// callStream is an open stream that carries one call at a time.
type callStream struct {
	stream callsv1.Calls_StreamClient
	cancel context.CancelFunc
	// idleSince is when the stream's last call returned.
	idleSince time.Time
	// generation is the Conn's generation when the stream opened.
	generation int64
}

// call sends r and waits for its reply. When ctx ends first, it cancels the
// stream, which cancels the call in the plugin. It reports whether the request
// left, and whether the stream may carry another call: not after an error,
// and not once ctx ended, even when the reply came at the same moment.
func (s *callStream) call(ctx context.Context, r *callsv1.Request) (answer *callsv1.Reply, sent, reusable bool, err error) {
	stop := context.AfterFunc(ctx, s.cancel)
	err = s.stream.Send(r)
	// Send returns io.EOF, without sending, when the stream has ended; Recv
	// then returns the status that ended it.
	sent = err == nil
	if err == nil || errors.Is(err, io.EOF) {
		answer, err = s.stream.Recv()
	}
	if !stop() || err != nil {
		s.cancel()
		return answer, sent, false, err
	}
	return answer, sent, true, nil
}

// streamError turns the error that ended a stream into the status a gRPC
// call would have failed with.
func streamError(err error) error {
	if errors.Is(err, io.EOF) {
		return status.Error(codes.Unavailable, "call stream: the plugin closed the stream")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("call stream: %v", err))
}

func decodeStatus(b []byte) error {
	var st spb.Status
	if err := proto.Unmarshal(b, &st); err != nil {
		return status.Errorf(codes.Internal, "plugin call: decode the plugin's error: %v", err)
	}
	if codes.Code(st.GetCode()) == codes.OK {
		return status.Errorf(codes.Internal, "plugin call: the plugin returned an error with status OK: %s", st.GetMessage())
	}
	return status.ErrorProto(&st)
}
