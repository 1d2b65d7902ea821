package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

// optionalEngine implements every optional interface on top of fakeEngine.
// Its streams send what the fields below say, then wait for the context
// when wait is set; done receives the context error the stream saw at its end.
type optionalEngine struct {
	fakeEngine

	events []JobEvent
	logs   [][]byte
	wait   bool
	done   chan error
	// watchErr and logsErr end the streams after their messages.
	watchErr error
	logsErr  error

	capacity *CapacityResponse
	builds   chan *BuildImageRequest
}

func (o *optionalEngine) finish(ctx context.Context, err error) error {
	if o.wait {
		<-ctx.Done()
		err = ctx.Err()
	}
	if o.done != nil {
		o.done <- ctx.Err()
	}
	return err
}

func (o *optionalEngine) WatchJobs(ctx context.Context, req *WatchJobsRequest, send func(JobEvent) error) error {
	for _, event := range o.events {
		event.Job.Labels = req.Labels
		if err := send(event); err != nil {
			return o.finish(ctx, err)
		}
	}
	return o.finish(ctx, o.watchErr)
}

func (o *optionalEngine) JobLogs(ctx context.Context, req *JobLogsRequest, w io.Writer) error {
	if req.Name == "missing" {
		return errdefs.NotFound("job %q not found", req.Name)
	}
	fmt.Fprintf(w, "%s follow=%t tail=%d\n", req.Name, req.Follow, req.TailLines)
	for _, b := range o.logs {
		if _, err := w.Write(b); err != nil {
			return o.finish(ctx, err)
		}
	}
	return o.finish(ctx, o.logsErr)
}

func (o *optionalEngine) Capacity(context.Context, *CapacityRequest) (*CapacityResponse, error) {
	return o.capacity, nil
}

func (o *optionalEngine) BuildImage(_ context.Context, req *BuildImageRequest) (*BuildImageResponse, error) {
	o.builds <- req
	return &BuildImageResponse{BuildName: "build-" + req.ProjectID, Image: req.Image}, nil
}

// collect returns a send function that appends to events.
func collect(events *[]JobEvent) func(JobEvent) error {
	return func(e JobEvent) error {
		*events = append(*events, e)
		return nil
	}
}

func TestSupports(t *testing.T) {
	t.Parallel()
	info := &pluginapi.Info{Capabilities: []string{CapabilityWatchJobs, CapabilityCapacity}}
	tests := []struct {
		name       string
		info       *pluginapi.Info
		capability string
		want       bool
	}{
		{"listed", info, CapabilityWatchJobs, true},
		{"second listed", info, CapabilityCapacity, true},
		{"not listed", info, CapabilityJobLogs, false},
		{"no capabilities", &pluginapi.Info{}, CapabilityWatchJobs, false},
		{"nil info", nil, CapabilityWatchJobs, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Supports(tt.info, tt.capability); got != tt.want {
				t.Errorf("Supports(%q) = %t, want %t", tt.capability, got, tt.want)
			}
		})
	}
}

// optionalCalls calls each optional method of eng and returns its error.
func optionalCalls(eng Engine) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"WatchJobs": func(ctx context.Context) error {
			return eng.(JobWatcher).WatchJobs(ctx, &WatchJobsRequest{}, func(JobEvent) error { return nil })
		},
		"JobLogs": func(ctx context.Context) error {
			return eng.(LogStreamer).JobLogs(ctx, &JobLogsRequest{Name: "j"}, io.Discard)
		},
		"Capacity": func(ctx context.Context) error {
			_, err := eng.(CapacityReporter).Capacity(ctx, &CapacityRequest{})
			return err
		},
		"BuildImage": func(ctx context.Context) error {
			_, err := eng.(ImageBuilder).BuildImage(ctx, &BuildImageRequest{ProjectID: "p"})
			return err
		},
	}
}

func TestOptionalCallsWithoutInterfaceAreUnimplemented(t *testing.T) {
	t.Parallel()
	eng := connect(t, &fakeEngine{})
	for name, call := range optionalCalls(eng) {
		err := call(t.Context())
		if !errors.Is(err, errdefs.ErrUnimplemented) {
			t.Errorf("%s: error = %v, want ErrUnimplemented", name, err)
		}
		if errors.Is(err, errdefs.ErrUnreachable) {
			t.Errorf("%s: error reads as unreachable: %v", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "does not implement "+name) {
			t.Errorf("%s: message = %q, want one naming the method", name, err.Error())
		}
	}
}

// legacyPlugin serves whatever register puts on the gRPC server, and gives
// the host the SDK's client, as an engine plugin built with an older SDK would.
type legacyPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	register func(*grpc.Server)
}

func (p *legacyPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	p.register(s)
	return nil
}

func (p *legacyPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return (&Plugin{}).GRPCClient(ctx, broker, conn)
}

// requiredOnlyServer implements GetInfo and leaves every other RPC to the
// generated UnimplementedEngineServer.
type requiredOnlyServer struct {
	enginev1.UnimplementedEngineServer
}

func (requiredOnlyServer) GetInfo(context.Context, *enginev1.GetInfoRequest) (*enginev1.GetInfoResponse, error) {
	return &enginev1.GetInfoResponse{Name: "old", Version: "0.1.0", ApiVersions: []int32{1}}, nil
}

// firstReleaseServiceDesc returns the Engine service as the SDK's first
// release described it: the required RPCs only. A server registered with it
// does not know the optional methods at all.
func firstReleaseServiceDesc() *grpc.ServiceDesc {
	required := map[string]bool{
		"GetInfo": true, "Configure": true, "PrepareArtifact": true, "CreateJob": true,
		"GetJob": true, "ListJobs": true, "StopJob": true, "DeleteJob": true,
	}
	desc := enginev1.Engine_ServiceDesc
	desc.Methods = nil
	desc.Streams = nil
	for _, m := range enginev1.Engine_ServiceDesc.Methods {
		if required[m.MethodName] {
			desc.Methods = append(desc.Methods, m)
		}
	}
	for _, s := range enginev1.Engine_ServiceDesc.Streams {
		if required[s.StreamName] {
			desc.Streams = append(desc.Streams, s)
		}
	}
	return &desc
}

func TestOlderPluginOptionalCallsAreUnimplemented(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		register func(*grpc.Server)
	}{
		{"methods unknown to the server", func(s *grpc.Server) {
			s.RegisterService(firstReleaseServiceDesc(), &server{impl: &fakeEngine{}})
		}},
		{"generated unimplemented server", func(s *grpc.Server) {
			enginev1.RegisterEngineServer(s, requiredOnlyServer{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &legacyPlugin{register: tt.register}})
			t.Cleanup(func() { client.Close() })
			raw, err := client.Dispense(PluginName)
			if err != nil {
				t.Fatalf("dispense engine: %v", err)
			}
			eng := raw.(Engine)
			if _, err := eng.GetInfo(t.Context()); err != nil {
				t.Fatalf("GetInfo of the older plugin: %v", err)
			}
			for name, call := range optionalCalls(eng) {
				err := call(t.Context())
				if !errors.Is(err, errdefs.ErrUnimplemented) {
					t.Errorf("%s: error = %v, want ErrUnimplemented", name, err)
				}
				if errors.Is(err, errdefs.ErrUnreachable) {
					t.Errorf("%s: error reads as unreachable: %v", name, err)
				}
			}
		})
	}
}

func TestWatchJobsRoundTrip(t *testing.T) {
	t.Parallel()
	events := []JobEvent{
		{Job: JobStatus{Name: "a", State: JobRunning, StartedAt: startedAt}},
		{Job: JobStatus{Name: "a", State: JobStopped, Reason: "stopped", StartedAt: startedAt, FinishedAt: startedAt.Add(time.Second)}},
		{Job: JobStatus{Name: "b", State: JobSucceeded}, Deleted: true},
	}
	eng := connect(t, &optionalEngine{events: events})
	var got []JobEvent
	labels := map[string]string{"project": "p"}
	err := eng.(JobWatcher).WatchJobs(t.Context(), &WatchJobsRequest{Labels: labels}, collect(&got))
	if err != nil {
		t.Fatalf("WatchJobs: %v", err)
	}
	want := make([]JobEvent, len(events))
	for i, e := range events {
		e.Job.Labels = labels
		want[i] = e
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

func TestWatchJobsPluginErrorIsTyped(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{events: []JobEvent{{Job: JobStatus{Name: "a", State: JobRunning}}}, watchErr: errdefs.Unavailable("cluster api down")}
	var got []JobEvent
	err := connect(t, fake).(JobWatcher).WatchJobs(t.Context(), &WatchJobsRequest{}, collect(&got))
	if !errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrUnreachable) {
		t.Errorf("error = %v, want ErrUnavailable from the plugin", err)
	}
	if len(got) != 1 {
		t.Errorf("received %d events before the error, want 1", len(got))
	}
}

func TestWatchJobsInvalidStateEndsStream(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{events: []JobEvent{{Job: JobStatus{Name: "a", State: "EXPLODED"}}}}
	err := connect(t, fake).(JobWatcher).WatchJobs(t.Context(), &WatchJobsRequest{}, func(JobEvent) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `invalid state "EXPLODED"`) {
		t.Errorf("error = %v, want one naming the invalid state", err)
	}
}

// waitDone returns what the plugin's stream saw as its context error when it
// ended, or fails when it did not end.
func waitDone(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("plugin stream did not end")
		return nil
	}
}

func TestWatchJobsHostCancelEndsPluginStream(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{events: []JobEvent{{Job: JobStatus{Name: "a", State: JobRunning}}}, wait: true, done: make(chan error, 1)}
	eng := connect(t, fake)
	ctx, cancel := context.WithCancel(t.Context())
	// The first event proves the stream is open; canceling then must end it
	// in the plugin too.
	err := eng.(JobWatcher).WatchJobs(ctx, &WatchJobsRequest{}, func(JobEvent) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("host error = %v, want context.Canceled", err)
	}
	if got := waitDone(t, fake.done); !errors.Is(got, context.Canceled) {
		t.Errorf("plugin context error = %v, want context.Canceled", got)
	}
}

func TestWatchJobsSendErrorEndsPluginStream(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{events: []JobEvent{{Job: JobStatus{Name: "a", State: JobRunning}}}, wait: true, done: make(chan error, 1)}
	errFull := errors.New("queue full")
	err := connect(t, fake).(JobWatcher).WatchJobs(t.Context(), &WatchJobsRequest{}, func(JobEvent) error { return errFull })
	if !errors.Is(err, errFull) {
		t.Errorf("host error = %v, want the send function's error", err)
	}
	if got := waitDone(t, fake.done); !errors.Is(got, context.Canceled) {
		t.Errorf("plugin context error = %v, want context.Canceled", got)
	}
}

func TestWatchJobsPluginReturnEndsHostCall(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{wait: true, done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// The plugin waits for its context, so the host's deadline must reach it
	// and end both sides.
	err := connect(t, fake).(JobWatcher).WatchJobs(ctx, &WatchJobsRequest{}, func(JobEvent) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("host error = %v, want context.DeadlineExceeded", err)
	}
	if got := waitDone(t, fake.done); got == nil {
		t.Error("plugin context did not end")
	}
}

func TestJobLogsStreamsBytes(t *testing.T) {
	t.Parallel()
	big := randomBytes(3<<20 + 5)
	fake := &optionalEngine{logs: [][]byte{[]byte("line 1\n"), big, {}, []byte("tail\n")}}
	var got bytes.Buffer
	err := connect(t, fake).(LogStreamer).JobLogs(t.Context(), &JobLogsRequest{Name: "j", Follow: true, TailLines: 10}, &got)
	if err != nil {
		t.Fatalf("JobLogs: %v", err)
	}
	want := append([]byte("j follow=true tail=10\nline 1\n"), big...)
	want = append(want, "tail\n"...)
	if !bytes.Equal(want, got.Bytes()) {
		t.Errorf("received %d bytes, want %d identical bytes", got.Len(), len(want))
	}
}

func TestJobLogsUnknownJobIsNotFound(t *testing.T) {
	t.Parallel()
	err := connect(t, &optionalEngine{}).(LogStreamer).JobLogs(t.Context(), &JobLogsRequest{Name: "missing"}, io.Discard)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("error = %v, want ErrNotFound", err)
	}
}

func TestJobLogsNilWriterIsInvalid(t *testing.T) {
	t.Parallel()
	err := connect(t, &optionalEngine{}).(LogStreamer).JobLogs(t.Context(), &JobLogsRequest{Name: "j"}, nil)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("error = %v, want ErrInvalid", err)
	}
}

// cancelOnWrite cancels a context once it has received want, to show that
// followed output reaches the host while the plugin keeps the stream open.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.cancel()
	}
	return len(p), nil
}

func TestJobLogsFollowDeliversBeforeStreamEnds(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{logs: [][]byte{[]byte("started\n")}, wait: true, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	w := &cancelOnWrite{want: "started\n", cancel: cancel}
	err := connect(t, fake).(LogStreamer).JobLogs(ctx, &JobLogsRequest{Name: "j", Follow: true}, w)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("host error = %v, want context.Canceled", err)
	}
	if got := waitDone(t, fake.done); !errors.Is(got, context.Canceled) {
		t.Errorf("plugin context error = %v, want context.Canceled", got)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJobLogsWriterErrorEndsPluginStream(t *testing.T) {
	t.Parallel()
	fake := &optionalEngine{wait: true, done: make(chan error, 1)}
	err := connect(t, fake).(LogStreamer).JobLogs(t.Context(), &JobLogsRequest{Name: "j"}, failingWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("host error = %v, want the writer's error", err)
	}
	if got := waitDone(t, fake.done); !errors.Is(got, context.Canceled) {
		t.Errorf("plugin context error = %v, want context.Canceled", got)
	}
}

func TestLogWriterConcurrentWritesAndClose(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	sent := 0
	w := &logWriter{send: func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		sent += len(b)
		return nil
	}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := w.Write(make([]byte, 100<<10)); err != nil {
				t.Errorf("Write: %v", err)
			}
		})
	}
	wg.Wait()
	if sent != 8*100<<10 {
		t.Errorf("sent %d bytes, want %d", sent, 8*100<<10)
	}
	w.guard.close()
	if _, err := w.Write([]byte("late")); !errors.Is(err, errStreamClosed) {
		t.Errorf("Write after close: error = %v, want errStreamClosed", err)
	}
}

func TestCapacityRoundTrip(t *testing.T) {
	t.Parallel()
	want := &CapacityResponse{Nodes: 3, AllocatableCPUMillis: 12000, AllocatableMemoryBytes: 48 << 30, RequestedCPUMillis: 500, RequestedMemoryBytes: 1 << 30}
	got, err := connect(t, &optionalEngine{capacity: want}).(CapacityReporter).Capacity(t.Context(), &CapacityRequest{})
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Capacity mismatch (-want +got):\n%s", diff)
	}
}

func TestCapacityNilResponseIsInternalError(t *testing.T) {
	t.Parallel()
	_, err := connect(t, &optionalEngine{}).(CapacityReporter).Capacity(t.Context(), &CapacityRequest{})
	if err == nil || !strings.Contains(err.Error(), "no response and no error") {
		t.Errorf("error = %v, want the missing response error", err)
	}
}

func TestBuildImageRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  BuildImageRequest
	}{
		{"every field", BuildImageRequest{
			ProjectID: "p-1", DeployID: 7, Image: "registry.test/p-1:7",
			ArchiveURL: "http://api/archive", ArchiveToken: "at",
			Registry: RegistryAuth{Server: "registry.test", Username: "u", Secret: "s"},
			APIHost:  "http://api", ReportToken: "rt", Timeout: 10 * time.Minute,
		}},
		{"no registry login", BuildImageRequest{ProjectID: "p-2", DeployID: 1, Image: "local/p-2:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &optionalEngine{builds: make(chan *BuildImageRequest, 1)}
			resp, err := connect(t, fake).(ImageBuilder).BuildImage(t.Context(), &tt.req)
			if err != nil {
				t.Fatalf("BuildImage: %v", err)
			}
			if diff := cmp.Diff(&tt.req, <-fake.builds); diff != "" {
				t.Errorf("request received by the plugin (-want +got):\n%s", diff)
			}
			want := &BuildImageResponse{BuildName: "build-" + tt.req.ProjectID, Image: tt.req.Image}
			if diff := cmp.Diff(want, resp); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
