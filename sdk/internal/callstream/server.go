package callstream

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"time"
	"weak"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// servers maps each gRPC server to its Calls service, so that a plugin
// process serving several services registers it once. The keys are weak, and
// a server's entry goes when the server is collected, as test servers are.
var servers sync.Map // keys are weak.Pointer[grpc.Server], values *server

// Register serves the unary methods of desc, implemented by impl, on the call
// streams of s, registering the Calls service on s the first time. Call it
// next to the generated Register function of the same service.
func Register(s *grpc.Server, desc *grpc.ServiceDesc, impl any) {
	key := weak.Make(s)
	v, loaded := servers.LoadOrStore(key, &server{methods: make(map[string]method)})
	srv := v.(*server)
	if !loaded {
		callsv1.RegisterCallsServer(s, srv)
		runtime.AddCleanup(s, func(key weak.Pointer[grpc.Server]) {
			if v, ok := servers.LoadAndDelete(key); ok {
				v.(*server).closeSocket()
			}
		}, key)
	}
	srv.add(desc, impl)
}

// add serves the unary methods of desc, implemented by impl.
func (s *server) add(desc *grpc.ServiceDesc, impl any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range desc.Methods {
		s.methods["/"+desc.ServiceName+"/"+m.MethodName] = method{impl: impl, handler: m.Handler}
	}
}

type server struct {
	callsv1.UnimplementedCallsServer

	mu      sync.Mutex
	methods map[string]method

	socketMu sync.Mutex
	// socket is the call socket, opened on the host's first Socket call.
	socket *socket
}

type method struct {
	impl    any
	handler grpc.MethodHandler
}

// Stream runs the calls the host sends on one stream, one after the other,
// each under the stream's context, which ends when the host cancels the
// stream.
func (s *server) Stream(stream callsv1.Calls_StreamServer) error {
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(s.run(stream.Context(), r)); err != nil {
			return err
		}
	}
}

// run runs one call and returns its reply.
func (s *server) run(ctx context.Context, r *callsv1.Request) *callsv1.Reply {
	s.mu.Lock()
	m, ok := s.methods[r.GetMethod()]
	s.mu.Unlock()
	if !ok {
		return failed(status.Errorf(codes.Unimplemented, "plugin call: unknown method %s", r.GetMethod()))
	}
	if timeout := time.Duration(r.GetTimeoutNanos()); timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	decode := func(req any) error {
		msg, ok := req.(proto.Message)
		if !ok {
			return status.Errorf(codes.Internal, "plugin call: %s takes a %T, not a protobuf message", r.GetMethod(), req)
		}
		if err := proto.Unmarshal(r.GetPayload(), msg); err != nil {
			return status.Errorf(codes.Internal, "plugin call: decode the request to %s: %v", r.GetMethod(), err)
		}
		return nil
	}
	resp, err := m.handler(m.impl, ctx, decode, nil)
	if err != nil {
		return failed(err)
	}

	msg, ok := resp.(proto.Message)
	if !ok {
		return failed(status.Errorf(codes.Internal, "plugin call: %s returned a %T, not a protobuf message", r.GetMethod(), resp))
	}
	payload, err := proto.Marshal(msg)
	if err != nil {
		return failed(status.Errorf(codes.Internal, "plugin call: encode the reply of %s: %v", r.GetMethod(), err))
	}
	return &callsv1.Reply{Payload: payload}
}

// failed returns the reply of a call that returned err. As a gRPC server
// does, an error without a status becomes UNKNOWN, apart from the context's
// own errors.
func failed(err error) *callsv1.Reply {
	s, ok := status.FromError(err)
	if !ok {
		s = status.FromContextError(err)
	}
	encoded, marshalErr := proto.Marshal(s.Proto())
	if marshalErr != nil {
		encoded, _ = proto.Marshal(status.New(codes.Internal, "plugin call: encode the status: "+marshalErr.Error()).Proto())
	}
	return &callsv1.Reply{Status: encoded}
}
