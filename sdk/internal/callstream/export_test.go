package callstream

import (
	"context"
	"time"
	"weak"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
)

// SetMaxReplyBytes sets the largest reply c reads on the call socket.
func SetMaxReplyBytes(c *Conn, n int) {
	c.maxReply = n
}

// RegisterWithSocket serves the unary methods of desc on the call streams of
// s, as Register does, but returns the reply of socket from Socket.
func RegisterWithSocket(s *grpc.Server, desc *grpc.ServiceDesc, impl any, socket func(context.Context) (*callsv1.SocketReply, error)) {
	srv := &server{methods: make(map[string]method)}
	srv.add(desc, impl)
	callsv1.RegisterCallsServer(s, otherSocket{server: srv, socket: socket})
}

type otherSocket struct {
	*server
	socket func(context.Context) (*callsv1.SocketReply, error)
}

func (o otherSocket) Socket(ctx context.Context, _ *callsv1.SocketRequest) (*callsv1.SocketReply, error) {
	return o.socket(ctx)
}

// SetLogger sets the logger of c.
func SetLogger(c *Conn, log hclog.Logger) {
	c.log = log
}

// SetSocketTimeouts sets how long c waits for the plugin's reply to the Socket
// request, and for a new connection to the socket with its key exchange.
func SetSocketTimeouts(c *Conn, request, key time.Duration) {
	c.socketRequestTimeout, c.keyTimeout = request, key
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
