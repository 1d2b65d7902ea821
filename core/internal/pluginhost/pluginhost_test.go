package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// TestMain removes the plugins that pluginDir built, about 40 MB, after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// pluginDir returns a folder with the local plugin binaries: the ones `make test` built, or
// ones built here once per test binary.
func pluginDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("ESTELA_TEST_PLUGIN_DIR"); dir != "" {
		return dir
	}
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "estela-plugins-")
		for _, p := range []string{"engine/local", "credentials/local"} {
			kind, name, _ := strings.Cut(p, "/")
			cmd := exec.Command("go", "build", "-o", filepath.Join(builtDir, "estela-"+kind+"-"+name), ".")
			cmd.Dir = filepath.Join("..", "..", "..", "plugins", p)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New(string(out))
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build plugins: %v", buildErr)
	}
	return builtDir
}

func engineOptions(t *testing.T, settings map[string]any) Options {
	t.Helper()
	b, err := Find([]string{pluginDir(t)}, KindEngine, "local")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(settings)
	return Options{Binary: b, Settings: raw, Logger: hclog.NewNullLogger(), CallTimeout: 10 * time.Second}
}

func localSettings(t *testing.T) map[string]any {
	t.Helper()
	jobSide, err := filepath.Abs("../../../sdk/scrapy")
	if err != nil {
		t.Fatal(err)
	}
	python := os.Getenv("ESTELA_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	return map[string]any{"data_dir": t.TempDir(), "job_side_dir": jobSide, "python": python}
}

func TestFindMissingPlugin(t *testing.T) {
	t.Parallel()
	_, err := Find([]string{pluginDir(t)}, KindEngine, "swarm")
	if err == nil || !strings.Contains(err.Error(), `engine plugin "swarm" not found`) || !regexp.MustCompile(`available: [a-z, ]*local`).MatchString(err.Error()) {
		t.Errorf("Find = %v, want an error naming the missing plugin and the available ones", err)
	}
}

func TestPinnedHashMismatchRefused(t *testing.T) {
	t.Parallel()
	opts := engineOptions(t, localSettings(t))
	opts.SHA256 = strings.Repeat("0", 64)
	e := NewEngine(opts)
	defer e.Close()
	err := e.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refusing to start it") {
		t.Errorf("Start with a wrong pin = %v, want a refusal", err)
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	e := NewEngine(engineOptions(t, map[string]any{"job_side_dir": "/nonexistent"}))
	defer e.Close()
	err := e.Start(context.Background())
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf("Start without data_dir = %v, want ErrInvalid naming data_dir", err)
	}
}

// A call to a plugin that fails to take its settings reads as the plugin being down, so that
// the job waits for it without using an attempt, and not as the job's invalid argument.
func TestCallToPluginThatFailsToStart(t *testing.T) {
	t.Parallel()
	e := NewEngine(engineOptions(t, map[string]any{"job_side_dir": "/nonexistent"}))
	defer e.Close()
	_, err := e.CreateJob(context.Background(), &engine.CreateJobRequest{Spec: engine.JobSpec{Name: "j", Command: []string{"true"}}})
	if !errors.Is(err, ErrPluginDown) || !errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf("CreateJob on a plugin whose settings are rejected = %v, want ErrPluginDown, not ErrInvalid, naming data_dir", err)
	}
	// A call during the back-off still gets the error of the failed start.
	_, err = e.ListJobs(context.Background(), &engine.ListJobsRequest{})
	if !errors.Is(err, ErrPluginDown) || !strings.Contains(err.Error(), "next try in") || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf("ListJobs during the back-off = %v, want ErrPluginDown with the next try and the start's error naming data_dir", err)
	}
}

func TestTypedErrorsCrossBoundary(t *testing.T) {
	t.Parallel()
	e := NewEngine(engineOptions(t, localSettings(t)))
	defer e.Close()
	_, err := e.GetJob(context.Background(), &engine.GetJobRequest{Name: "sj-404-x"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob of an unknown job = %v, want ErrNotFound", err)
	}
}

func TestRestartAfterPluginKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := NewEngine(engineOptions(t, localSettings(t)))
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if !e.Healthy(ctx) {
		t.Fatal("a started plugin is not healthy")
	}
	pid := e.inst.client.ReattachConfig().Pid
	socketDir := e.inst.socketDir
	if entries, err := os.ReadDir(socketDir); err != nil || len(entries) != 1 {
		t.Fatalf("the plugin's socket folder %s holds %d entries (%v), want its socket", socketDir, len(entries), err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill plugin %d: %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Healthy(ctx) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if e.Healthy(ctx) {
		t.Fatal("a killed plugin still reports healthy")
	}
	if _, err := e.ListJobs(ctx, &engine.ListJobsRequest{}); err != nil {
		t.Fatalf("call after the plugin died: %v", err)
	}
	if !e.Healthy(ctx) {
		t.Error("the plugin was not started again")
	}
	if newPid := e.inst.client.ReattachConfig().Pid; newPid == pid {
		t.Errorf("plugin pid %d did not change after a restart", newPid)
	}
	// The killed plugin left its socket file, which goes with its folder.
	if _, err := os.Stat(socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed plugin's socket folder %s is still there (%v)", socketDir, err)
	}
	newDir := e.inst.socketDir
	e.Close()
	if _, err := os.Stat(newDir); newDir == socketDir || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, the socket folder %s of the new plugin is still there (%v)", newDir, err)
	}
}

// A health check of a stopped plugin process gives up when its context ends, where
// go-plugin's own ping would wait for ever.
func TestHealthOfStoppedPluginHasADeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := NewEngine(engineOptions(t, localSettings(t)))
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}

	pid := e.inst.client.ReattachConfig().Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop plugin %d: %v", pid, err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	// The signal stops each thread of the process when it next runs; wait until the kernel
	// shows every thread stopped.
	for deadline := time.Now().Add(5 * time.Second); !processStopped(t, pid) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	checkCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if e.Healthy(checkCtx) {
		t.Error("a stopped plugin reports healthy")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the health check of a stopped plugin took %s, with 300ms to go", took.Round(time.Millisecond))
	}

	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if !e.Healthy(ctx) {
		t.Error("the plugin is not healthy again after SIGCONT")
	}
}

func TestClosedPluginStaysDown(t *testing.T) {
	t.Parallel()
	e := NewEngine(engineOptions(t, localSettings(t)))
	if err := e.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	e.Close()
	if _, err := e.ListJobs(context.Background(), &engine.ListJobsRequest{}); !errors.Is(err, ErrPluginDown) {
		t.Errorf("call after Close = %v, want ErrPluginDown", err)
	}
}

// buildTestEngine builds the test engine plugin with the given protocol version into dir.
func buildTestEngine(t *testing.T, dir, protocol string) Binary {
	t.Helper()
	path := filepath.Join(dir, "estela-engine-test")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.protocol="+protocol, "-o", path, "./testdata/testengine")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test engine: %v\n%s", err, out)
	}
	return Binary{Kind: KindEngine, Name: "test", Path: path}
}

func TestHungPluginRestarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := buildTestEngine(t, t.TempDir(), "1")
	e := NewEngine(Options{Binary: b, Settings: []byte(`{"hang": true}`), Logger: hclog.NewNullLogger(), CallTimeout: 300 * time.Millisecond})
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	firstPid := e.inst.client.ReattachConfig().Pid
	for i := 0; i < hangLimit; i++ {
		_, err := e.GetJob(ctx, &engine.GetJobRequest{Name: "x"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d to a hung plugin = %v, want a deadline error", i+1, err)
		}
	}
	if _, err := e.ListJobs(ctx, &engine.ListJobsRequest{}); err != nil {
		t.Fatalf("call after the restart: %v", err)
	}
	if pid := e.inst.client.ReattachConfig().Pid; pid == firstPid {
		t.Errorf("hung plugin (pid %d) was not replaced", pid)
	}
}

// A stopped plugin process handles nothing, not even go-plugin's request to exit. Its calls
// time out, the plugin host kills it and starts another, and Close does not wait for ever.
func TestStoppedPluginRestarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := buildTestEngine(t, t.TempDir(), "1")
	e := NewEngine(Options{Binary: b, Logger: hclog.NewNullLogger(), CallTimeout: 300 * time.Millisecond})
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	firstPid := e.inst.client.ReattachConfig().Pid
	stopProcess(t, firstPid)

	done := make(chan error, 1)
	go func() {
		for range hangLimit {
			if _, err := e.ListJobs(ctx, &engine.ListJobsRequest{}); !errors.Is(err, context.DeadlineExceeded) {
				done <- fmt.Errorf("call to a stopped plugin = %v, want a deadline error", err)
				return
			}
		}
		_, err := e.ListJobs(ctx, &engine.ListJobsRequest{})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("calls to a stopped plugin: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("calls to a stopped plugin were still waiting after 30 s")
	}
	if pid := e.inst.client.ReattachConfig().Pid; pid == firstPid {
		t.Errorf("the stopped plugin (pid %d) was not replaced", pid)
	}

	stopProcess(t, e.inst.client.ReattachConfig().Pid)
	closed := make(chan struct{})
	go func() {
		e.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(killTimeout + 20*time.Second):
		t.Fatalf("Close of a stopped plugin was still waiting after %s", killTimeout+20*time.Second)
	}
}

// Timeouts of concurrent calls to a stopped plugin restart it once: calls that reached the old
// process do not count against the new one.
func TestConcurrentTimeoutsRestartOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := buildTestEngine(t, t.TempDir(), "1")
	var log syncBuffer
	e := NewEngine(Options{Binary: b, Logger: hclog.New(&hclog.LoggerOptions{Output: &log}), CallTimeout: 300 * time.Millisecond})
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	stopProcess(t, e.inst.client.ReattachConfig().Pid)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 4 {
				_, _ = e.ListJobs(ctx, &engine.ListJobsRequest{})
			}
		})
	}
	wg.Wait()
	if _, err := e.ListJobs(ctx, &engine.ListJobsRequest{}); err != nil {
		t.Fatalf("a call after the restart: %v", err)
	}
	if n := strings.Count(log.String(), "plugin calls keep timing out, restarting it"); n != 1 {
		t.Errorf("the stopped plugin was restarted %d times, want once; log:\n%s", n, log.String())
	}
	if n := strings.Count(log.String(), ": plugin started:"); n != 2 {
		t.Errorf("the plugin started %d times, want 2; log:\n%s", n, log.String())
	}
}

// syncBuffer is a bytes.Buffer that goroutines may write at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stopProcess stops the process pid with SIGSTOP and waits until Linux shows it stopped. The
// process is killed when the test ends.
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reading a process's state needs Linux's /proc")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop process %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("read the state of process %d: %v", pid, err)
		}
		// The state follows the command name, which is in parentheses.
		if fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(fields) > 0 && fields[0] == "T" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d did not stop within 10 s", pid)
}

// A temporary folder too long for the plugin's socket path fails the start with a message that
// names TMPDIR, and leaves no folder behind.
func TestTempFolderTooLongForSocket(t *testing.T) {
	opts := engineOptions(t, localSettings(t))
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 90))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	e := NewEngine(opts)
	defer e.Close()
	err := e.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "set TMPDIR to a folder of at most 65 bytes") {
		t.Errorf("start with a TMPDIR of %d bytes = %v, want an error naming TMPDIR", len(long), err)
	}
	if entries, err := os.ReadDir(long); err != nil || len(entries) != 0 {
		t.Errorf("the start left %d entries in TMPDIR (%v)", len(entries), err)
	}
}

func TestNewerPluginRejected(t *testing.T) {
	t.Parallel()
	b := buildTestEngine(t, t.TempDir(), "2")
	e := NewEngine(Options{Binary: b, Logger: hclog.NewNullLogger()})
	defer e.Close()
	err := e.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "incompatible API version") {
		t.Errorf("start a plugin that serves only protocol 2 = %v, want a start error", err)
	}
}

// TestPluginGoMaxProcs checks the GOMAXPROCS in the plugin process's environment: the one the
// options give, over the server's own, and the server's when the options leave it.
func TestPluginGoMaxProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "7")
	for _, tc := range []struct {
		procs int
		want  []string
	}{
		{procs: 1, want: []string{"GOMAXPROCS=1"}},
		{procs: 0, want: []string{"GOMAXPROCS=7"}},
	} {
		opts := engineOptions(t, localSettings(t))
		opts.GoMaxProcs = tc.procs
		e := NewEngine(opts)
		if err := e.Start(context.Background()); err != nil {
			e.Close()
			t.Fatalf("start with GoMaxProcs %d: %v", tc.procs, err)
		}
		pid := e.inst.client.ReattachConfig().Pid
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		e.Close()
		if err != nil {
			t.Skipf("no /proc on this system: %v", err)
		}
		var got []string
		for _, kv := range strings.Split(string(environ), "\x00") {
			if strings.HasPrefix(kv, "GOMAXPROCS=") {
				got = append(got, kv)
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("GoMaxProcs %d: the plugin's GOMAXPROCS (-want +got):\n%s", tc.procs, diff)
		}
	}
}

// processStopped reports whether /proc shows every thread of process pid stopped.
func processStopped(t *testing.T, pid int) bool {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		t.Fatalf("list the threads of process %d: %v", pid, err)
	}
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			return false // a thread that ended meanwhile; look again
		}
		// The command name, in parentheses, may hold spaces; the state follows it.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) == 0 || fields[0] != "T" {
			return false
		}
	}
	return true
}
