package callstream_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/internal/callstream"
	callsv1 "github.com/estela-go/estela-go/sdk/proto/calls/v1"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

// testEngine returns from GetJob the job the request names, and fails or
// waits for some names.
type testEngine struct {
	enginev1.UnimplementedEngineServer

	// seen receives the context of each GetJob for a name starting with "wait",
	// which then waits for the context to end.
	seen chan context.Context
}

func (e *testEngine) GetJob(ctx context.Context, req *enginev1.GetJobRequest) (*enginev1.GetJobResponse, error) {
	name := req.GetName()
	switch {
	case name == "full":
		return nil, errdefs.ToGRPC(fmt.Errorf("engine holds 3 jobs: %w", errdefs.ErrAtCapacity))
	case name == "plain error":
		return nil, errors.New("no status here")
	case strings.HasPrefix(name, "wait"):
		e.seen <- ctx
		<-ctx.Done()
		return nil, ctx.Err()
	case strings.HasPrefix(name, "sleep "):
		d, err := time.ParseDuration(strings.TrimPrefix(name, "sleep "))
		if err != nil {
			return nil, err
		}
		time.Sleep(d)
	}
	return &enginev1.GetJobResponse{Job: &enginev1.JobStatus{Name: name}}, nil
}

// ListJobs returns as many jobs as the label "count" gives, each named with
// the label "name" and its number.
func (e *testEngine) ListJobs(_ context.Context, req *enginev1.ListJobsRequest) (*enginev1.ListJobsResponse, error) {
	var count int
	if _, err := fmt.Sscan(req.GetLabels()["count"], &count); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "label count: %v", err)
	}
	resp := &enginev1.ListJobsResponse{}
	for i := range count {
		resp.Jobs = append(resp.Jobs, &enginev1.JobStatus{Name: fmt.Sprintf("%s-%d", req.GetLabels()["name"], i)})
	}
	return resp, nil
}

// counts records the gRPC calls a server received, apart from those carried
// on the call socket and streams.
type counts struct {
	// unary counts the unary calls apart from the requests for the call
	// socket, which socketRequests counts.
	unary, socketRequests, streams atomic.Int64
}

// plugin is the set of call paths a test plugin serves.
type plugin int

const (
	// withSocket serves the call socket, the streams and gRPC, as the SDK does.
	withSocket plugin = iota
	// withStreams serves the streams and gRPC, as the SDK did before the socket.
	withStreams
	// unaryOnly serves gRPC only, as a plugin in another language may.
	unaryOnly
)

func (p plugin) String() string {
	return [...]string{"socket", "streams", "grpc"}[p]
}

// eachPlugin runs test once with each plugin in kinds.
func eachPlugin(t *testing.T, test func(t *testing.T, kind plugin), kinds ...plugin) {
	for _, kind := range kinds {
		t.Run(kind.String(), func(t *testing.T) { test(t, kind) })
	}
}

// fixture is a plugin's gRPC server and a host's client of it through Conn.
type fixture struct {
	client enginev1.EngineClient
	conn   *callstream.Conn
	impl   *testEngine
	counts *counts
	server *grpc.Server
	cc     *grpc.ClientConn
	// plain makes gRPC calls on the same connection, without the streams.
	plain enginev1.EngineClient
}

// serve starts a gRPC server on a Unix socket, serving the engine on the paths
// kind gives. maxReplyBytes is the client's limit on gRPC and on the socket.
func serve(t testing.TB, kind plugin, maxReplyBytes int, opts ...grpc.ServerOption) *fixture {
	t.Helper()
	return serveWith(t, func(s *grpc.Server, impl *testEngine) {
		switch kind {
		case withSocket:
			callstream.Register(s, &enginev1.Engine_ServiceDesc, impl)
			t.Cleanup(func() { callstream.CloseSocket(s) })
		case withStreams:
			callstream.RegisterWithSocket(s, &enginev1.Engine_ServiceDesc, impl, func(context.Context) (*callsv1.SocketReply, error) {
				return nil, status.Error(codes.Unimplemented, "method Socket not implemented")
			})
		}
	}, maxReplyBytes, opts...)
}

// serveWith starts a gRPC server on a Unix socket with the engine, and with
// what register adds.
func serveWith(t testing.TB, register func(*grpc.Server, *testEngine), maxReplyBytes int, opts ...grpc.ServerOption) *fixture {
	t.Helper()
	n := &counts{}
	s := grpc.NewServer(append(opts,
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == callsv1.Calls_Socket_FullMethodName {
				n.socketRequests.Add(1)
			} else {
				n.unary.Add(1)
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			n.streams.Add(1)
			return h(srv, ss)
		}),
	)...)

	impl := &testEngine{seen: make(chan context.Context, 1)}
	enginev1.RegisterEngineServer(s, impl)
	register(s, impl)
	socket := filepath.Join(t.TempDir(), "plugin.sock")
	lis, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)

	cc, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxReplyBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	conn := callstream.NewConn(cc, nil)
	callstream.SetMaxReplyBytes(conn, maxReplyBytes)
	return &fixture{client: enginev1.NewEngineClient(conn), conn: conn, impl: impl, counts: n, server: s, cc: cc,
		plain: enginev1.NewEngineClient(cc)}
}

func getJob(t *testing.T, c enginev1.EngineClient, name string) {
	t.Helper()
	resp, err := c.GetJob(context.Background(), &enginev1.GetJobRequest{Name: name})
	if err != nil {
		t.Fatalf("GetJob(%q): %v", name, err)
	}
	if got := resp.GetJob().GetName(); got != name {
		t.Fatalf("GetJob(%q) returned job %q", name, got)
	}
}

func TestCallsOneAfterTheOtherShareOneConnection(t *testing.T) {
	eachPlugin(t, func(t *testing.T, kind plugin) {
		f := serve(t, kind, 1<<20)
		c, n := f.client, f.counts
		for i := range 20 {
			getJob(t, c, fmt.Sprintf("job-%d", i))
		}
		wantStreams, wantIdle := int64(0), 1
		if kind == withStreams {
			wantStreams, wantIdle = 1, 0
		}
		if u, a, s := n.unary.Load(), n.socketRequests.Load(), n.streams.Load(); u != 0 || a != 1 || s != wantStreams {
			t.Errorf("the server received %d gRPC unary calls, %d requests for the socket and %d streams, want 0, 1 and %d", u, a, s, wantStreams)
		}
		if idle := callstream.IdleSocketConns(f.conn); idle != wantIdle {
			t.Errorf("%d connections to the call socket are idle, want %d", idle, wantIdle)
		}
	}, withSocket, withStreams)
}

func TestPluginWithoutTheStreamGetsGRPCCalls(t *testing.T) {
	f := serve(t, unaryOnly, 1<<20)
	c, n := f.client, f.counts
	for i := range 5 {
		getJob(t, c, fmt.Sprintf("job-%d", i))
	}
	// gRPC refuses the stream of an unknown service before any interceptor.
	if u, s := n.unary.Load(), n.streams.Load(); u != 5 || s != 0 {
		t.Errorf("the server received %d gRPC unary calls and %d streams, want 5 and 0", u, s)
	}
}

func TestConcurrentCallsGetTheirOwnReplies(t *testing.T) {
	eachPlugin(t, testConcurrentCalls, withSocket, withStreams)
}

func testConcurrentCalls(t *testing.T, kind plugin) {
	f := serve(t, kind, 1<<20)
	c, n := f.client, f.counts
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			// Later calls sleep less, so the replies come back out of order.
			name := fmt.Sprintf("sleep %dms", 64-i)
			resp, err := c.GetJob(context.Background(), &enginev1.GetJobRequest{Name: name})
			if err == nil && resp.GetJob().GetName() != name {
				err = fmt.Errorf("GetJob(%q) returned job %q", name, resp.GetJob().GetName())
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)

	for err := range errs {
		t.Error(err)
	}
	if a := n.socketRequests.Load(); a != 1 {
		t.Errorf("64 calls at once requested the call socket %d times, want once", a)
	}
	if s := n.streams.Load(); kind == withStreams && (s < 2 || s > 64) {
		t.Errorf("the server received %d streams for 64 calls at once, want 2 to 64", s)
	}
	if s := n.streams.Load(); kind == withSocket && s != 0 {
		t.Errorf("the server received %d streams for 64 calls at once on the socket, want none", s)
	}
	before := n.streams.Load()
	for i := range 10 {
		getJob(t, c, fmt.Sprintf("job-%d", i))
	}
	if u, s := n.unary.Load(), n.streams.Load()-before; u != 0 || s != 0 {
		t.Errorf("10 calls after them made %d gRPC unary calls and opened %d streams, want 0 and 0", u, s)
	}
}

func TestErrorsKeepTheirCodeAndDetails(t *testing.T) {
	eachPlugin(t, testErrors, withSocket, withStreams)
}

func testErrors(t *testing.T, kind plugin) {
	f := serve(t, kind, 1<<20)
	c := f.client
	_, err := c.GetJob(context.Background(), &enginev1.GetJobRequest{Name: "full"})
	if got := errdefs.FromGRPC(err); !errors.Is(got, errdefs.ErrAtCapacity) || got.Error() != "engine holds 3 jobs: at capacity" {
		t.Errorf("GetJob(full) error = %v (%v), want ErrAtCapacity with the plugin's message", got, err)
	}
	_, err = c.GetJob(context.Background(), &enginev1.GetJobRequest{Name: "plain error"})
	if s := status.Convert(err); s.Code() != codes.Unknown || s.Message() != "no status here" {
		t.Errorf("GetJob(plain error) = %v, want UNKNOWN with the handler's message", err)
	}
	err = f.conn.Invoke(context.Background(), "/estela.engine.v1.Engine/NoSuchMethod", &enginev1.GetJobRequest{}, &enginev1.GetJobResponse{})
	if s := status.Convert(err); s.Code() != codes.Unimplemented || !strings.Contains(s.Message(), "NoSuchMethod") {
		t.Errorf("an unknown method = %v, want UNIMPLEMENTED naming it", err)
	}
	// A method the plugin does not implement returns UNIMPLEMENTED in a reply,
	// which must not turn the connection to gRPC calls.
	_, err = c.Capacity(context.Background(), &enginev1.CapacityRequest{})
	if s := status.Convert(err); s.Code() != codes.Unimplemented || !strings.Contains(s.Message(), "Capacity") {
		t.Errorf("Capacity of an engine without it = %v, want UNIMPLEMENTED naming it", err)
	}
	getJob(t, c, "after the errors")
	if u := f.counts.unary.Load(); u != 0 {
		t.Errorf("the server received %d gRPC unary calls, want 0", u)
	}
}

func TestDeadlineAndCancelReachTheHandler(t *testing.T) {
	eachPlugin(t, testDeadlineAndCancel, withSocket, withStreams)
}

func testDeadlineAndCancel(t *testing.T, kind plugin) {
	f := serve(t, kind, 1<<20)
	c, impl := f.client, f.impl

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	go func() {
		handlerCtx := <-impl.seen
		if deadline, ok := handlerCtx.Deadline(); !ok || time.Until(deadline) < 59*time.Minute {
			t.Errorf("the handler's deadline is %v (set: %v), want about an hour ahead", deadline, ok)
		}
		cancel()
	}()
	_, err := c.GetJob(ctx, &enginev1.GetJobRequest{Name: "wait for the deadline"})
	if status.Code(err) != codes.Canceled {
		t.Errorf("a canceled call returned %v, want CANCELED", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.GetJob(ctx, &enginev1.GetJobRequest{Name: "wait for the cancel"})
		done <- err
	}()
	handlerCtx := <-impl.seen
	cancel()
	select {
	case <-handlerCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not canceled 10 s after the caller's")
	}
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("a canceled call returned %v, want CANCELED", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go func() { <-impl.seen }()
	if _, err := c.GetJob(ctx, &enginev1.GetJobRequest{Name: "wait past the deadline"}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a call past its deadline returned %v, want DEADLINE_EXCEEDED", err)
	}
	if got := errdefs.FromGRPC(status.FromContextError(context.DeadlineExceeded).Err()); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("FromGRPC(DEADLINE_EXCEEDED) = %v, want context.DeadlineExceeded", got)
	}
	getJob(t, c, "after the cancels")
}

func TestLargeMessagesAndTheirLimits(t *testing.T) {
	eachPlugin(t, testLargeMessages, withSocket, withStreams)
}

func testLargeMessages(t *testing.T, kind plugin) {
	const maxReply = 8 << 20
	c := serve(t, kind, maxReply).client

	getJob(t, c, strings.Repeat("n", 3<<20))
	resp, err := c.ListJobs(context.Background(), &enginev1.ListJobsRequest{Labels: map[string]string{"count": "100", "name": strings.Repeat("j", 50<<10)}})
	if err != nil {
		t.Fatalf("ListJobs of about 5 MiB: %v", err)
	}
	if len(resp.GetJobs()) != 100 || !strings.HasSuffix(resp.GetJobs()[99].GetName(), "-99") {
		t.Errorf("ListJobs returned %d jobs, want 100 ending in -99", len(resp.GetJobs()))
	}

	// Over the connection's limits a call fails as a gRPC call would, and the
	// next call still works.
	_, err = c.ListJobs(context.Background(), &enginev1.ListJobsRequest{Labels: map[string]string{"count": "200", "name": strings.Repeat("j", 50<<10)}})
	if s := status.Convert(err); s.Code() != codes.ResourceExhausted {
		t.Errorf("a reply over the client's limit = %v, want RESOURCE_EXHAUSTED", err)
	}
	// A request over the socket's limit goes on a stream and fails there.
	_, err = c.GetJob(context.Background(), &enginev1.GetJobRequest{Name: strings.Repeat("n", 5<<20)})
	if s := status.Convert(err); s.Code() != codes.ResourceExhausted {
		t.Errorf("a request over the server's limit of 4 MiB = %v, want RESOURCE_EXHAUSTED", err)
	}
	getJob(t, c, "after the large messages")
}

func TestCallsFailWhenThePluginGoes(t *testing.T) {
	eachPlugin(t, testPluginGoes, withSocket, withStreams)
}

func testPluginGoes(t *testing.T, kind plugin) {
	f := serve(t, kind, 1<<20)
	c, impl, s := f.client, f.impl, f.server
	getJob(t, c, "before")
	done := make(chan error, 1)
	go func() {
		_, err := c.GetJob(context.Background(), &enginev1.GetJobRequest{Name: "wait for the end"})
		done <- err
	}()
	<-impl.seen
	// A plugin's socket and gRPC server go with its process.
	s.Stop()
	callstream.CloseSocket(s)
	select {
	case err := <-done:
		if got := errdefs.FromGRPC(err); !errors.Is(got, errdefs.ErrUnavailable) {
			t.Errorf("a call in flight when the plugin went returned %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call in flight was still waiting 10 s after the plugin went")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.GetJob(ctx, &enginev1.GetJobRequest{Name: "after"}); !errors.Is(errdefs.FromGRPC(err), errdefs.ErrUnavailable) {
		t.Errorf("a call after the plugin went returned %v, want ErrUnavailable", err)
	}
}

func BenchmarkGetJob(b *testing.B) {
	for _, kind := range []plugin{withSocket, withStreams, unaryOnly} {
		b.Run(kind.String(), func(b *testing.B) {
			c := serve(b, kind, 1<<20).client
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			req := &enginev1.GetJobRequest{Name: "job"}
			for b.Loop() {
				if _, err := c.GetJob(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A caller whose context ends as its reply arrives must not leave its stream,
// canceled by then, to the next call.
func TestCanceledCallsDoNotReachTheNextCall(t *testing.T) {
	eachPlugin(t, testCanceledCalls, withSocket, withStreams)
}

func testCanceledCalls(t *testing.T, kind plugin) {
	f := serve(t, kind, 1<<20)
	failures := 0
	for i := range 2000 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(20+i%280)*time.Microsecond)
		_, _ = f.client.GetJob(ctx, &enginev1.GetJobRequest{Name: "raced"})
		cancel()
		if _, err := f.client.GetJob(context.Background(), &enginev1.GetJobRequest{Name: "next"}); err != nil {
			failures++
		}
	}
	if failures > 0 {
		t.Errorf("%d of 2000 calls made after a call with a short deadline failed", failures)
	}
}

// With the plugin's stream slots all taken, a call waits for one only until
// its deadline, and idle call streams give their slots up to a streaming call.
func TestStreamSlotsOfAPluginThatLimitsThem(t *testing.T) {
	f := serve(t, withStreams, 1<<20, grpc.MaxConcurrentStreams(2))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { getJob(t, f.client, "sleep 1s") })
	}
	time.Sleep(200 * time.Millisecond) // both slow calls hold their streams

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.client.GetJob(ctx, &enginev1.GetJobRequest{Name: "no slot"})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 5*time.Second {
		t.Errorf("a call without a free slot returned %v after %s, want DEADLINE_EXCEEDED after its 200 ms", err, time.Since(start).Round(time.Millisecond))
	}
	wg.Wait()

	// The two slow calls' streams are idle now and hold both slots.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	watch, err := f.client.WatchJobs(ctx, &enginev1.WatchJobsRequest{})
	if err == nil {
		_, err = watch.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("WatchJobs with idle call streams holding the slots = %v, want the engine's UNIMPLEMENTED", err)
	}
	getJob(t, f.client, "after the streaming call")
}

// More calls at once than the plugin has stream slots: a call that waits for a
// slot takes the stream of a call that returned, as a gRPC call would take the
// slot it frees.
func TestMoreCallsThanStreamSlots(t *testing.T) {
	f := serve(t, withStreams, 1<<20, grpc.MaxConcurrentStreams(2))
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 5 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := f.client.GetJob(ctx, &enginev1.GetJobRequest{Name: "sleep 300ms"}); err != nil {
				t.Errorf("call %d of 5 with 2 slots: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	// Three rounds of 300 ms; a call left waiting for a slot would take its 10 s.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("5 calls of 300 ms on 2 slots took %s", took.Round(time.Millisecond))
	}
}

// Idle streams give their slots back after a while, so that calls made without
// them, as go-plugin's health checks are, get a slot.
func TestIdleStreamsGiveTheirSlotsBack(t *testing.T) {
	f := serve(t, withStreams, 1<<20, grpc.MaxConcurrentStreams(2))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { getJob(t, f.client, "sleep 100ms") })
	}
	wg.Wait()
	// Both streams are idle and hold both slots.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := f.plain.GetJob(ctx, &enginev1.GetJobRequest{Name: "plain"}); err != nil {
		t.Fatalf("a gRPC call while idle streams held the slots: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a gRPC call waited %s for a slot held by idle streams", took.Round(time.Millisecond))
	}
}

// When the plugin's server closes a connection that reached its age, the idle
// streams on it end. A call on one of them may fail, as a gRPC call under way
// at that moment would, but only one: the next call goes on a new stream.
func TestCallsAfterTheServerClosesAnOldConnection(t *testing.T) {
	f := serve(t, withStreams, 1<<20, grpc.KeepaliveParams(keepalive.ServerParameters{
		MaxConnectionAge: 300 * time.Millisecond, MaxConnectionAgeGrace: 100 * time.Millisecond,
	}))
	var wg sync.WaitGroup
	for round := range 4 {
		// Several idle streams on the connection about to close.
		for range 3 {
			wg.Go(func() { getJob(t, f.client, "sleep 20ms") })
		}
		wg.Wait()
		time.Sleep(600 * time.Millisecond)
		_, _ = f.client.GetJob(context.Background(), &enginev1.GetJobRequest{Name: "may fail"})
		if _, err := f.client.GetJob(context.Background(), &enginev1.GetJobRequest{Name: fmt.Sprintf("round %d", round)}); err != nil {
			t.Errorf("round %d: the second call after the server closed the old connection: %v", round, err)
		}
	}
}

// Calls made all the time, several at once, while the plugin's server closes
// connections past their age: they move to the new connection after the
// server's GOAWAY, before the old one closes, as gRPC calls do.
func TestBusyCallsWhileTheServerClosesOldConnections(t *testing.T) {
	eachPlugin(t, testBusyCalls, withSocket, withStreams)
}

func testBusyCalls(t *testing.T, kind plugin) {
	f := serve(t, kind, 1<<20, grpc.KeepaliveParams(keepalive.ServerParameters{
		MaxConnectionAge: 500 * time.Millisecond, MaxConnectionAgeGrace: 300 * time.Millisecond,
	}))
	var failed, calls atomic.Int64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				calls.Add(1)
				if _, err := f.client.GetJob(context.Background(), &enginev1.GetJobRequest{Name: "busy"}); err != nil {
					failed.Add(1)
					t.Logf("call failed: %v", err)
				}
			})
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond)
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d calls failed while the server closed old connections, want none", n, calls.Load())
	}
}

// A connection to the call socket that does not start with the key is closed
// before any call runs, and the right key opens one.
func TestCallSocketWantsTheKey(t *testing.T) {
	f := serve(t, withSocket, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := callsv1.NewCallsClient(f.cc).Socket(ctx, &callsv1.SocketRequest{})
	if err != nil {
		t.Fatalf("Socket: %v", err)
	}
	if len(reply.GetKey()) != 32 || reply.GetMaxRequestBytes() != 4<<20 {
		t.Fatalf("Socket returned a key of %d bytes and a request limit of %d, want 32 and 4 MiB", len(reply.GetKey()), reply.GetMaxRequestBytes())
	}
	payload, err := proto.Marshal(&enginev1.GetJobRequest{Name: "wait for a caller without the key"})
	if err != nil {
		t.Fatal(err)
	}
	request, err := proto.Marshal(&callsv1.Request{Method: enginev1.Engine_GetJob_FullMethodName, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(request)))
	frame = append(frame, request...)

	wrongKey := bytes.Repeat([]byte{0x5a}, 32)
	for name, key := range map[string][]byte{"a wrong key": wrongKey, "a short key": reply.GetKey()[:31]} {
		conn, err := net.Dial("unix", reply.GetAddress())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(append(append([]byte{}, key...), frame...))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(make([]byte, 1))
		_ = conn.Close()
		if n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("a connection with %s read %d bytes and %v, want it closed", name, n, err)
		}
	}
	select {
	case <-f.impl.seen:
		t.Fatal("a call ran on a connection without the key")
	default:
	}

	conn, err := net.Dial("unix", reply.GetAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload, _ = proto.Marshal(&enginev1.GetJobRequest{Name: "with the key"})
	request, _ = proto.Marshal(&callsv1.Request{Method: enginev1.Engine_GetJob_FullMethodName, Payload: payload})
	frame = binary.BigEndian.AppendUint32(append([]byte{}, reply.GetKey()...), uint32(len(request)))
	if _, err := conn.Write(append(frame, request...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	accepted := make([]byte, 1)
	if _, err := io.ReadFull(conn, accepted); err != nil || accepted[0] != 1 {
		t.Fatalf("the plugin sent %v (%v) after the right key, want byte 1", accepted, err)
	}
	header := make([]byte, 4)
	if _, err := io.ReadFull(conn, header); err != nil {
		t.Fatalf("read the reply's length: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(header))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("read the reply: %v", err)
	}
	var answer callsv1.Reply
	var job enginev1.GetJobResponse
	if err := proto.Unmarshal(body, &answer); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(answer.GetPayload(), &job); err != nil || job.GetJob().GetName() != "with the key" {
		t.Errorf("the reply on a connection with the key holds job %q (%v), want %q", job.GetJob().GetName(), err, "with the key")
	}
}

// When the call socket cannot be reached, the calls go on the streams.
func TestCallsMoveToStreamsWhenTheSocketGoes(t *testing.T) {
	f := serve(t, withSocket, 1<<20)
	getJob(t, f.client, "on the socket")
	callstream.CloseSocket(f.server)
	for i := range 3 {
		getJob(t, f.client, fmt.Sprintf("after the socket closed %d", i))
	}
	if u, a, s := f.counts.unary.Load(), f.counts.socketRequests.Load(), f.counts.streams.Load(); u != 0 || a != 1 || s != 1 {
		t.Errorf("the server received %d gRPC unary calls, %d requests for the socket and %d streams, want 0, 1 and 1", u, a, s)
	}
}

// Closing the host's connection to the plugin closes its connections to the
// call socket.
func TestSocketConnectionsCloseWithTheConnection(t *testing.T) {
	f := serve(t, withSocket, 1<<20)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { getJob(t, f.client, "sleep 50ms") })
	}
	wg.Wait()
	if n := callstream.SocketConns(f.server); n != 3 {
		t.Fatalf("the call socket has %d connections after 3 calls at once, want 3", n)
	}
	if err := f.cc.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for callstream.SocketConns(f.server) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := callstream.SocketConns(f.server); n != 0 {
		t.Errorf("the call socket still has %d connections 10 s after the host closed its connection", n)
	}
}

// A plugin whose Socket fails, hangs or returns a socket that cannot be used
// gets its calls on the streams, and is requested the socket once.
func TestUnusableSocketsMoveCallsToStreams(t *testing.T) {
	requireAbstractSockets(t)
	closing, err := net.Listen("unix", "@estela-test-closing-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer closing.Close()
	go func() {
		for {
			conn, err := closing.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	key := bytes.Repeat([]byte{7}, 32)
	for _, tt := range []struct {
		name  string
		reply func(ctx context.Context) (*callsv1.SocketReply, error)
		// wantLog is part of the warning the host logs.
		wantLog string
	}{
		{"an error", func(context.Context) (*callsv1.SocketReply, error) {
			return nil, status.Error(codes.Internal, "no socket here")
		}, "the request for the plugin's call socket failed, so its calls go on gRPC streams: error=\"rpc error: code = Internal desc = no socket here\""},
		{"no reply", func(ctx context.Context) (*callsv1.SocketReply, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, "the plugin did not reply to the request for its call socket in time, so its calls go on gRPC streams: waited=200ms"},
		{"a relative path", func(context.Context) (*callsv1.SocketReply, error) {
			return &callsv1.SocketReply{Address: "calls.sock", Key: key, MaxRequestBytes: 1 << 20}, nil
		}, `address \"calls.sock\" is neither abstract (@name) nor an absolute path`},
		{"a short key", func(context.Context) (*callsv1.SocketReply, error) {
			return &callsv1.SocketReply{Address: "@estela-test-nowhere", Key: key[:16], MaxRequestBytes: 1 << 20}, nil
		}, "the key has 16 bytes, not 32"},
		{"no request limit", func(context.Context) (*callsv1.SocketReply, error) {
			return &callsv1.SocketReply{Address: "@estela-test-nowhere", Key: key}, nil
		}, "max_request_bytes is 0"},
		{"an address without a listener", func(context.Context) (*callsv1.SocketReply, error) {
			return &callsv1.SocketReply{Address: "@estela-test-nowhere", Key: key, MaxRequestBytes: 1 << 20}, nil
		}, "connecting to the plugin's call socket failed, so its calls go on gRPC streams: address=@estela-test-nowhere"},
		{"a socket that closes its connections", func(context.Context) (*callsv1.SocketReply, error) {
			return &callsv1.SocketReply{Address: closing.Addr().String(), Key: key, MaxRequestBytes: 1 << 20}, nil
		}, "the plugin did not accept the key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := serveWith(t, func(s *grpc.Server, impl *testEngine) {
				callstream.RegisterWithSocket(s, &enginev1.Engine_ServiceDesc, impl, tt.reply)
			}, 1<<20)
			callstream.SetSocketTimeouts(f.conn, 200*time.Millisecond, 200*time.Millisecond)
			var log bytes.Buffer
			callstream.SetLogger(f.conn, hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Debug}))
			defer func() {
				if !strings.Contains(log.String(), tt.wantLog) {
					t.Errorf("the host logged %q, want a line containing %q", log.String(), tt.wantLog)
				}
			}()
			for i := range 3 {
				getJob(t, f.client, fmt.Sprintf("job-%d", i))
			}
			if r, s := f.counts.socketRequests.Load(), f.counts.streams.Load(); r != 1 || s != 1 {
				t.Errorf("3 calls made %d requests for the socket and opened %d streams, want 1 and 1", r, s)
			}
		})
	}
}

// Calls with deadlines shorter than the Socket request and the key exchange
// still move to the streams when either never ends: both run on their own.
func TestUnusableSocketsMoveShortCallsToStreams(t *testing.T) {
	requireAbstractSockets(t)
	silent, err := net.Listen("unix", "@estela-test-silent-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// accepted holds the connections the listener keeps open without a reply.
	var accepted []net.Conn
	var acceptedMu sync.Mutex
	defer func() {
		acceptedMu.Lock()
		defer acceptedMu.Unlock()
		for _, conn := range accepted {
			_ = conn.Close()
		}
	}()
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			acceptedMu.Lock()
			accepted = append(accepted, conn)
			acceptedMu.Unlock()
		}
	}()
	key := bytes.Repeat([]byte{7}, 32)
	for _, tt := range []struct {
		name  string
		reply func(ctx context.Context) (*callsv1.SocketReply, error)
	}{
		{"Socket never replies", func(ctx context.Context) (*callsv1.SocketReply, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		{"the key is never accepted", func(context.Context) (*callsv1.SocketReply, error) {
			return &callsv1.SocketReply{Address: silent.Addr().String(), Key: key, MaxRequestBytes: 1 << 20}, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := serveWith(t, func(s *grpc.Server, impl *testEngine) {
				callstream.RegisterWithSocket(s, &enginev1.Engine_ServiceDesc, impl, tt.reply)
			}, 1<<20)
			callstream.SetSocketTimeouts(f.conn, 300*time.Millisecond, 300*time.Millisecond)
			// Many calls at once, each of which stops waiting for its connection.
			var wg sync.WaitGroup
			for range 40 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
					defer cancel()
					_, _ = f.client.GetJob(ctx, &enginev1.GetJobRequest{Name: "at once"})
				})
			}
			wg.Wait()
			deadline := time.Now().Add(10 * time.Second)
			var err error
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				_, err = f.client.GetJob(ctx, &enginev1.GetJobRequest{Name: "short"})
				cancel()
				if err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("calls of 50 ms still failed after 10 s: %v", err)
			}
			// A call that reaches the streams just before its deadline leaves its
			// stream, so the calls may open more than one.
			if r, s := f.counts.socketRequests.Load(), f.counts.streams.Load(); r != 1 || s < 1 {
				t.Errorf("the calls made %d requests for the socket and opened %d streams, want 1 and at least 1", r, s)
			}
			acceptedMu.Lock()
			defer acceptedMu.Unlock()
			if n := len(accepted); n > 16 {
				t.Errorf("calls that stopped waiting opened %d connections to the socket at once, want 16 at most", n)
			}
		})
	}
}

// requireAbstractSockets skips tests whose listeners have abstract addresses,
// which only Linux has.
func requireAbstractSockets(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("abstract Unix socket addresses need Linux")
	}
}
