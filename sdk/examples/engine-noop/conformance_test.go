package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/enginetest"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// harness returns the conformance harness for engines that newEngine returns.
func harness(newEngine func(t *testing.T) engine.Engine) enginetest.Harness {
	return enginetest.Harness{
		New: newEngine,
		Archive: func(t *testing.T) ([]byte, []string) {
			return projectZip(t), []string{"alpha", "beta"}
		},
		Exit:  func(code int) []string { return []string{"noop-exit", strconv.Itoa(code)} },
		Sleep: []string{"noop-sleep"},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, harness(func(t *testing.T) engine.Engine {
		return enginetest.Connect(t, newConfigured(t, `{}`))
	}))
}

func TestConformanceInProcess(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, harness(func(t *testing.T) engine.Engine {
		return newConfigured(t, `{}`)
	}))
}

// loggingEngine adds JobLogs to the noop engine, so that the suite's job
// logs section runs against a real engine too. A job whose command is
// "echo TEXT" succeeds with TEXT and a newline as its output.
type loggingEngine struct {
	*noopEngine

	mu     sync.Mutex
	output map[string]string
}

var _ engine.LogStreamer = (*loggingEngine)(nil)

func (e *loggingEngine) GetInfo(ctx context.Context) (*pluginapi.Info, error) {
	info, err := e.noopEngine.GetInfo(ctx)
	if err != nil {
		return nil, err
	}
	info.Capabilities = append(info.Capabilities, engine.CapabilityJobLogs)
	return info, nil
}

func (e *loggingEngine) CreateJob(ctx context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	spec := req.Spec
	if len(spec.Command) > 0 && spec.Command[0] == "echo" {
		e.mu.Lock()
		e.output[spec.Name] = strings.Join(spec.Command[1:], " ") + "\n"
		e.mu.Unlock()
		spec.Command = nil
	}
	return e.noopEngine.CreateJob(ctx, &engine.CreateJobRequest{Spec: spec})
}

func (e *loggingEngine) JobLogs(ctx context.Context, req *engine.JobLogsRequest, w io.Writer) error {
	if _, err := e.GetJob(ctx, &engine.GetJobRequest{Name: req.Name}); err != nil {
		return err
	}
	e.mu.Lock()
	output := e.output[req.Name]
	e.mu.Unlock()
	_, err := io.WriteString(w, output)
	return err
}

func TestConformanceWithJobLogs(t *testing.T) {
	t.Parallel()
	h := harness(func(t *testing.T) engine.Engine {
		return enginetest.Connect(t, &loggingEngine{noopEngine: newConfigured(t, `{}`), output: map[string]string{}})
	})
	h.Echo = func(text string) []string { return []string{"echo", text} }
	enginetest.Run(t, h)
}
