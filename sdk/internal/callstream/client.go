// Package callstream carries a plugin's unary gRPC calls as frames on one
// stream that stays open (the estela.calls.v1 contract), in place of a gRPC
// call each. A gRPC call sets up an HTTP/2 stream, with headers and trailers,
// for every request; on this stream a call costs one message each way.
//
// The host side is Conn, a grpc.ClientConnInterface that generated clients
// take in place of the connection. The plugin side is Register, which serves a
// service's unary methods on the stream next to their ordinary gRPC handlers.
// A plugin built with an SDK without the stream answers it with
// UNIMPLEMENTED, and Conn then makes every call as a gRPC call.
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

// framePayloadBytes is the most payload one frame carries. Larger messages
// take several frames, so that no frame comes near gRPC's message limits and
// a large reply does not hold up small ones for long.
const framePayloadBytes = 1 << 20

// Conn sends the unary calls of generated gRPC clients on a call stream, and
// their streaming calls as gRPC calls on the connection.
type Conn struct {
	cc *grpc.ClientConn
	// maxReplyBytes is the largest reply accepted, as the connection's
	// MaxCallRecvMsgSize is for a gRPC call.
	maxReplyBytes int

	mu sync.Mutex
	// unary is set once the plugin answered the stream with UNIMPLEMENTED.
	unary bool
	// current is the open stream, nil before the first call and after it broke.
	current *session
	// opening is closed when the stream being opened is open or failed to open.
	opening chan struct{}
}

var _ grpc.ClientConnInterface = (*Conn)(nil)

// NewConn returns a Conn that calls the plugin over cc and accepts replies of
// up to maxReplyBytes. It opens the stream at the first call.
func NewConn(cc *grpc.ClientConn, maxReplyBytes int) *Conn {
	return &Conn{cc: cc, maxReplyBytes: maxReplyBytes}
}

// Invoke makes a unary call on the stream. Calls with options other than
// grpc.StaticMethod, and every call to a plugin without the stream, go
// through gRPC as before.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	req, reqOK := args.(proto.Message)
	resp, respOK := reply.(proto.Message)
	if !reqOK || !respOK || !onlyStaticMethod(opts) {
		return c.cc.Invoke(ctx, method, args, reply, opts...)
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	if s == nil {
		return c.cc.Invoke(ctx, method, args, reply, opts...)
	}
	return s.call(ctx, method, req, resp)
}

// NewStream opens a streaming call as a gRPC call of its own.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
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

// session returns the open stream, opening one when there is none. It returns
// nil, and no error, when the plugin does not serve the stream.
func (c *Conn) session(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		if c.unary {
			c.mu.Unlock()
			return nil, nil
		}
		if s := c.current; s != nil && !s.broken() {
			c.mu.Unlock()
			return s, nil
		}
		if wait := c.opening; wait != nil {
			// Another call is opening the stream: wait for it, then look again.
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
		done := make(chan struct{})
		c.opening = done
		c.mu.Unlock()

		s, unimplemented, err := c.open(ctx)
		c.mu.Lock()
		c.opening = nil
		c.current = s
		c.unary = unimplemented
		c.mu.Unlock()
		close(done)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// open opens a stream and waits for the plugin's answer to the opening frame.
// It reports unimplemented when the plugin does not serve the stream.
func (c *Conn) open(ctx context.Context) (s *session, unimplemented bool, err error) {
	// The stream outlives the call that opens it, so it gets a context of its
	// own. The opening call's context only bounds the wait for the answer.
	streamCtx, cancel := context.WithCancel(context.Background())
	stream, err := callsv1.NewCallsClient(c.cc).Stream(streamCtx)
	if err != nil {
		cancel()
		return nil, false, err
	}
	stop := context.AfterFunc(ctx, cancel)
	err = stream.Send(&callsv1.Frame{})
	var hello *callsv1.Frame
	if err == nil || errors.Is(err, io.EOF) {
		// After io.EOF from Send, Recv returns the stream's status.
		hello, err = stream.Recv()
	}
	if !stop() {
		cancel()
		return nil, false, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		cancel()
		if status.Code(err) == codes.Unimplemented {
			return nil, true, nil
		}
		return nil, false, streamError(err)
	}
	if hello.GetId() != 0 {
		cancel()
		return nil, false, status.Errorf(codes.Internal, "call stream: the plugin answered the opening frame with call %d", hello.GetId())
	}
	s = &session{stream: stream, cancel: cancel, maxReplyBytes: c.maxReplyBytes, pending: make(map[uint64]*pendingCall)}
	go s.receive()
	return s, false, nil
}

// session is one open stream and the calls waiting for their replies on it.
type session struct {
	stream        callsv1.Calls_StreamClient
	cancel        context.CancelFunc
	maxReplyBytes int

	// sendMu serializes Send, which gRPC does not allow concurrently.
	sendMu sync.Mutex

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*pendingCall
	// err is set when the stream broke; every later call fails with it.
	err error
}

type pendingCall struct {
	done chan result
	// reply collects the payload of a reply that spans several frames.
	reply []byte
	// tooLarge is set when the reply passed maxReplyBytes; its later frames
	// are dropped.
	tooLarge bool
}

type result struct {
	payload []byte
	err     error
}

func (s *session) broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

func (s *session) call(ctx context.Context, method string, req, resp proto.Message) error {
	var timeout time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
		if timeout <= 0 {
			return status.FromContextError(context.DeadlineExceeded).Err()
		}
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return status.Errorf(codes.Internal, "call stream: encode the request: %v", err)
	}
	id, p, err := s.register()
	if err != nil {
		return err
	}
	if err := s.sendRequest(id, method, payload, timeout); err != nil {
		// The stream broke, and receive delivers its status to every pending call,
		// this one too.
		s.fail(streamError(err))
	}
	select {
	case r := <-p.done:
		if r.err != nil {
			return r.err
		}
		if err := proto.Unmarshal(r.payload, resp); err != nil {
			return status.Errorf(codes.Internal, "call stream: decode the reply of %s: %v", method, err)
		}
		return nil
	case <-ctx.Done():
		if s.forget(id) {
			go s.sendCancel(id)
		}
		return status.FromContextError(ctx.Err()).Err()
	}
}

// register gives a new call its id.
func (s *session) register() (uint64, *pendingCall, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, nil, s.err
	}
	s.nextID++
	p := &pendingCall{done: make(chan result, 1)}
	s.pending[s.nextID] = p
	return s.nextID, p, nil
}

// forget drops a call whose caller stopped waiting. It reports whether the
// call was still waiting for its reply.
func (s *session) forget(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[id]
	delete(s.pending, id)
	return ok
}

func (s *session) sendRequest(id uint64, method string, payload []byte, timeout time.Duration) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	first := &callsv1.Frame{Id: id, Method: method, TimeoutNanos: int64(timeout)}
	return sendPayload(s.stream.Send, first, payload)
}

func (s *session) sendCancel(id uint64) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	// An error here means the stream broke, which receive reports to the calls.
	_ = s.stream.Send(&callsv1.Frame{Id: id, Cancel: true})
}

// sendPayload sends first with as much of payload as a frame holds, then the
// rest in frames of the same id.
func sendPayload(send func(*callsv1.Frame) error, first *callsv1.Frame, payload []byte) error {
	f := first
	for {
		n := min(len(payload), framePayloadBytes)
		f.Payload, f.More = payload[:n], n < len(payload)
		if err := send(f); err != nil {
			return err
		}
		payload = payload[n:]
		if len(payload) == 0 {
			return nil
		}
		f = &callsv1.Frame{Id: first.Id}
	}
}

// receive hands each reply to its call until the stream ends, then fails the
// calls still waiting.
func (s *session) receive() {
	for {
		f, err := s.stream.Recv()
		if err != nil {
			s.fail(streamError(err))
			return
		}
		s.deliver(f)
	}
}

func (s *session) deliver(f *callsv1.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[f.GetId()]
	if !ok {
		return // a call whose caller stopped waiting
	}
	switch {
	case p.tooLarge:
	case len(f.GetStatus()) > 0:
		p.reply = nil
	case len(p.reply)+len(f.GetPayload()) > s.maxReplyBytes:
		p.tooLarge, p.reply = true, nil
	case p.reply == nil && !f.GetMore():
		p.reply = f.GetPayload()
	default:
		p.reply = append(p.reply, f.GetPayload()...)
	}
	if f.GetMore() {
		return
	}
	delete(s.pending, f.GetId())
	switch {
	case p.tooLarge:
		p.done <- result{err: status.Errorf(codes.ResourceExhausted,
			"call stream: the reply is larger than the limit of %d bytes", s.maxReplyBytes)}
	case len(f.GetStatus()) > 0:
		p.done <- result{err: decodeStatus(f.GetStatus())}
	default:
		p.done <- result{payload: p.reply}
	}
}

// fail marks the stream broken with err, unless it already is, and fails
// every waiting call with the stream's error.
func (s *session) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	for id, p := range s.pending {
		p.done <- result{err: s.err}
		delete(s.pending, id)
	}
	s.cancel()
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
		return status.Errorf(codes.Internal, "call stream: the plugin failed a call with status OK: %s", st.GetMessage())
	}
	return status.ErrorProto(&st)
}
