// Package callstream carries a plugin's unary gRPC calls on streams that stay
// open (the estela.calls.v1 contract), in place of a gRPC call each. A gRPC
// call sets up an HTTP/2 stream, with headers and trailers, for every request.
// On an open stream a call costs one message each way.
//
// The host side is Conn, a grpc.ClientConnInterface that generated clients
// take in place of the connection. It keeps idle streams in a pool and makes
// one call at a time on each. The plugin side is Register, which serves a
// service's unary methods on the streams next to their gRPC methods. A plugin
// built with an SDK without the streams ends them with UNIMPLEMENTED, and Conn
// then makes every call as a gRPC call.
package callstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// maxIdleStreams is how many idle streams a Conn keeps. More calls at once
// open more streams, which are closed when their call returns. Each open
// stream counts against a plugin's limit of concurrent streams, if it sets
// one, so NewStream closes the idle ones before it opens a stream of its own.
const maxIdleStreams = 16

// Conn sends the unary calls of generated gRPC clients on call streams, and
// their streaming calls as gRPC calls on the connection.
type Conn struct {
	cc grpc.ClientConnInterface

	mu sync.Mutex
	// unary is set once the plugin ended a stream with UNIMPLEMENTED.
	unary bool
	idle  []*callStream
}

var _ grpc.ClientConnInterface = (*Conn)(nil)

// NewConn returns a Conn that calls the plugin over cc. The connection's
// message size limits apply to the calls on streams as to gRPC calls.
func NewConn(cc grpc.ClientConnInterface) *Conn {
	return &Conn{cc: cc}
}

// Invoke makes a unary call on an idle stream, or on a new one. Calls with
// options other than grpc.StaticMethod, and every call to a plugin without
// the streams, go through gRPC as before.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	req, reqOK := args.(proto.Message)
	resp, respOK := reply.(proto.Message)
	if !reqOK || !respOK || !onlyStaticMethod(opts) || c.unaryOnly() {
		return c.cc.Invoke(ctx, method, args, reply, opts...)
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return status.Errorf(codes.Internal, "call stream: encode the request to %s: %v", method, err)
	}

	r := &callsv1.Request{Method: method, Payload: payload}
	if deadline, ok := ctx.Deadline(); ok {
		timeout := time.Until(deadline)
		if timeout <= 0 {
			return status.FromContextError(context.DeadlineExceeded).Err()
		}
		r.TimeoutNanos = int64(timeout)
	}

	s := c.take()
	answer, reusable, err := s.call(ctx, c.cc, r)
	if reusable {
		c.put(s)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case status.Code(err) == codes.Unimplemented:
		// Only a plugin without the Calls service ends a stream with
		// UNIMPLEMENTED, before it reads the request; a method's own
		// UNIMPLEMENTED comes in a reply.
		c.mu.Lock()
		c.unary = true
		c.mu.Unlock()
		return c.cc.Invoke(ctx, method, args, reply, opts...)
	default:
		return streamError(err)
	}

	if len(answer.GetStatus()) > 0 {
		return decodeStatus(answer.GetStatus())
	}
	if err := proto.Unmarshal(answer.GetPayload(), resp); err != nil {
		return status.Errorf(codes.Internal, "call stream: decode the reply of %s: %v", method, err)
	}
	return nil
}

// NewStream opens a streaming call as a gRPC call of its own. It first closes
// the idle call streams, so that they do not hold the plugin's stream slots
// when it limits them; streaming calls are few, and later calls open new ones.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, s := range idle {
		s.cancel()
	}
	return c.cc.NewStream(ctx, desc, method, opts...)
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

// take returns the stream that was idle last, or a new one that its first
// call opens.
func (c *Conn) take() *callStream {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		s := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return s
	}
	c.mu.Unlock()
	// A stream outlives the call that opens it, so it gets a context of its
	// own, which a call cancels when its caller stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	return &callStream{ctx: ctx, cancel: cancel}
}

// put keeps s for the next call, or closes it when enough streams are idle.
func (c *Conn) put(s *callStream) {
	c.mu.Lock()
	if len(c.idle) < maxIdleStreams {
		c.idle = append(c.idle, s)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	s.cancel()
}

// callStream is a stream that carries one call at a time.
type callStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	// stream is nil until the first call opens it.
	stream callsv1.Calls_StreamClient
}

// call opens the stream if it is new, sends r and waits for its reply. When
// ctx ends first, it cancels the stream, which cancels the call in the plugin.
// It reports whether the stream may carry another call: not after an error,
// and not once ctx ended, even when the reply came at the same moment.
func (s *callStream) call(ctx context.Context, cc grpc.ClientConnInterface, r *callsv1.Request) (*callsv1.Reply, bool, error) {
	stop := context.AfterFunc(ctx, s.cancel)
	var err error
	if s.stream == nil {
		// Opening waits for a free stream slot when the plugin limits them.
		s.stream, err = callsv1.NewCallsClient(cc).Stream(s.ctx)
	}
	var answer *callsv1.Reply
	if err == nil {
		err = s.stream.Send(r)
	}
	if err == nil || errors.Is(err, io.EOF) {
		// After io.EOF from Send, Recv returns the status that ended the stream.
		answer, err = s.stream.Recv()
	}
	if !stop() || err != nil {
		s.cancel()
		return answer, false, err
	}
	return answer, true, nil
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
		return status.Errorf(codes.Internal, "call stream: decode the plugin's error: %v", err)
	}
	if codes.Code(st.GetCode()) == codes.OK {
		return status.Errorf(codes.Internal, "call stream: the plugin returned an error with status OK: %s", st.GetMessage())
	}
	return status.ErrorProto(&st)
}
