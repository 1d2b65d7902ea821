package callstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// maxRequestBytes is the largest request the plugin accepts on the stream,
// gRPC's default limit for a request to a server.
const maxRequestBytes = 4 << 20

// servers holds the call stream service of each gRPC server, so that a plugin
// process serving several services registers it once.
var servers sync.Map // *grpc.Server -> *server

// Register serves the unary methods of desc, implemented by impl, on the call
// stream of s, registering the stream's service on s the first time. Call it
// next to the generated Register function of the same service.
func Register(s *grpc.Server, desc *grpc.ServiceDesc, impl any) {
	v, loaded := servers.LoadOrStore(s, &server{methods: make(map[string]method)})
	srv := v.(*server)
	if !loaded {
		callsv1.RegisterCallsServer(s, srv)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, m := range desc.Methods {
		srv.methods["/"+desc.ServiceName+"/"+m.MethodName] = method{impl: impl, handler: m.Handler}
	}
}

type server struct {
	callsv1.UnimplementedCallsServer

	mu      sync.Mutex
	methods map[string]method
}

type method struct {
	impl    any
	handler grpc.MethodHandler
}

func (s *server) lookup(name string) (method, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.methods[name]
	return m, ok
}

// incoming is a request whose frames are still arriving.
type incoming struct {
	method   string
	timeout  time.Duration
	payload  []byte
	tooLarge bool
}

// Stream runs each call the host sends in a goroutine of its own and sends
// its reply when it returns. When the stream ends, the calls still running
// are canceled.
func (s *server) Stream(stream callsv1.Calls_StreamServer) error {
	st := &serverStream{stream: stream, running: make(map[uint64]context.CancelFunc)}
	defer st.cancelAll()
	arriving := make(map[uint64]*incoming)
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		id := f.GetId()
		switch {
		case id == 0:
			if err := st.send(&callsv1.Frame{}); err != nil {
				return err
			}
			continue
		case f.GetCancel():
			delete(arriving, id)
			st.cancel(id)
			continue
		}
		in := arriving[id]
		if in == nil {
			in = &incoming{method: f.GetMethod(), timeout: time.Duration(f.GetTimeoutNanos())}
			arriving[id] = in
		}
		if !in.tooLarge && len(in.payload)+len(f.GetPayload()) > maxRequestBytes {
			in.tooLarge, in.payload = true, nil
		}
		if !in.tooLarge {
			if in.payload == nil && !f.GetMore() {
				in.payload = f.GetPayload()
			} else {
				in.payload = append(in.payload, f.GetPayload()...)
			}
		}
		if f.GetMore() {
			continue
		}
		delete(arriving, id)
		if err := s.start(st, id, in); err != nil {
			return err
		}
	}
}

// start runs a complete request, or answers at once when it cannot run.
func (s *server) start(st *serverStream, id uint64, in *incoming) error {
	if in.tooLarge {
		return st.reply(id, nil, status.Errorf(codes.ResourceExhausted,
			"call stream: the request to %s is larger than the limit of %d bytes", in.method, maxRequestBytes))
	}
	m, ok := s.lookup(in.method)
	if !ok {
		return st.reply(id, nil, status.Errorf(codes.Unimplemented, "call stream: unknown method %s", in.method))
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if in.timeout > 0 {
		ctx, cancel = context.WithTimeout(st.stream.Context(), in.timeout)
	} else {
		ctx, cancel = context.WithCancel(st.stream.Context())
	}
	st.track(id, cancel)
	go func() {
		defer cancel()
		decode := func(req any) error {
			msg, ok := req.(proto.Message)
			if !ok {
				return status.Errorf(codes.Internal, "call stream: %s takes a %T, not a protobuf message", in.method, req)
			}
			if err := proto.Unmarshal(in.payload, msg); err != nil {
				return status.Errorf(codes.Internal, "call stream: decode the request to %s: %v", in.method, err)
			}
			return nil
		}
		resp, err := m.handler(m.impl, ctx, decode, nil)
		if !st.untrack(id) {
			return // canceled by the host, which no longer waits for the reply
		}
		// An error here means the stream ended; the host fails the call itself.
		_ = st.reply(id, resp, err)
	}()
	return nil
}

// serverStream is the plugin's end of one stream.
type serverStream struct {
	stream callsv1.Calls_StreamServer
	// sendMu serializes Send, which gRPC does not allow concurrently.
	sendMu sync.Mutex

	mu      sync.Mutex
	running map[uint64]context.CancelFunc
}

func (st *serverStream) send(f *callsv1.Frame) error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	return st.stream.Send(f)
}

// reply sends resp, or the status of err when it is not nil, as the reply to
// call id.
func (st *serverStream) reply(id uint64, resp any, err error) error {
	if err == nil {
		msg, ok := resp.(proto.Message)
		if !ok {
			err = status.Errorf(codes.Internal, "call stream: the handler returned a %T, not a protobuf message", resp)
		} else if payload, marshalErr := proto.Marshal(msg); marshalErr != nil {
			err = status.Errorf(codes.Internal, "call stream: encode the reply: %v", marshalErr)
		} else {
			st.sendMu.Lock()
			defer st.sendMu.Unlock()
			return sendPayload(st.stream.Send, &callsv1.Frame{Id: id}, payload)
		}
	}
	// As a gRPC server does: an error without a status is UNKNOWN, except the
	// context's own errors.
	s, ok := status.FromError(err)
	if !ok {
		s = status.FromContextError(err)
	}
	encoded, marshalErr := proto.Marshal(s.Proto())
	if marshalErr != nil {
		return fmt.Errorf("call stream: encode the status of call %d: %w", id, marshalErr)
	}
	return st.send(&callsv1.Frame{Id: id, Status: encoded})
}

func (st *serverStream) track(id uint64, cancel context.CancelFunc) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.running[id] = cancel
}

// untrack drops a call that returned. It reports false when the call was
// canceled by the host or by the end of the stream.
func (st *serverStream) untrack(id uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.running[id]
	delete(st.running, id)
	return ok
}

func (st *serverStream) cancel(id uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cancel, ok := st.running[id]; ok {
		cancel()
		delete(st.running, id)
	}
}

func (st *serverStream) cancelAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, cancel := range st.running {
		cancel()
		delete(st.running, id)
	}
}
