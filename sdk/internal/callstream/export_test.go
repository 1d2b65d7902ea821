package callstream

import (
	"context"
	"weak"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// SetMaxReplyBytes sets the largest reply c reads on the call socket.
func SetMaxReplyBytes(c *Conn, n int) {
	c.maxReply = n
}

// RegisterWithoutSocket serves the unary methods of desc on the call streams
// of s, as Register did before the call socket: Socket gets UNIMPLEMENTED.
func RegisterWithoutSocket(s *grpc.Server, desc *grpc.ServiceDesc, impl any) {
	srv := &server{methods: make(map[string]method)}
	for _, m := range desc.Methods {
		srv.methods["/"+desc.ServiceName+"/"+m.MethodName] = method{impl: impl, handler: m.Handler}
	}
	callsv1.RegisterCallsServer(s, streamsOnly{srv})
}

type streamsOnly struct {
	*server
}

func (streamsOnly) Socket(context.Context, *callsv1.SocketRequest) (*callsv1.SocketReply, error) {
	return nil, status.Error(codes.Unimplemented, "method Socket not implemented")
}

// IdleSocketConns returns how many connections to the call socket c keeps idle.
func IdleSocketConns(c *Conn) int {
	sock := c.sock.Load()
	if sock == nil {
		return 0
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	return len(sock.idle)
}

// SocketConns returns how many connections the call socket of s has open.
func SocketConns(s *grpc.Server) int {
	v, ok := servers.Load(weak.Make(s))
	if !ok {
		return 0
	}
	srv := v.(*server)
	srv.socketMu.Lock()
	sock := srv.socket
	srv.socketMu.Unlock()
	if sock == nil {
		return 0
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	return len(sock.conns)
}
