package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

func TestJobLogs(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-logs", "exit 0", nil))
	a.setLogs("job-logs", "out 1\nout 2\nout 3\n", "err 1\nerr 2\n")
	cases := []struct {
		name   string
		req    engine.JobLogsRequest
		want   string
		origin string
	}{
		{"whole", engine.JobLogsRequest{Name: "job-logs"}, "out 1\nout 2\nout 3\nerr 1\nerr 2\n", "start"},
		{"tail", engine.JobLogsRequest{Name: "job-logs", TailLines: 1}, "out 3\nerr 2\n", "end"},
	}
	for _, c := range cases {
		before := len(a.logRequests())
		var out bytes.Buffer
		if err := e.JobLogs(t.Context(), &c.req, &out); err != nil {
			t.Fatalf("%s: JobLogs: %v", c.name, err)
		}
		if diff := cmp.Diff(c.want, out.String()); diff != "" {
			t.Errorf("%s: output mismatch (-want +got):\n%s", c.name, diff)
		}
		for _, q := range a.logRequests()[before:] {
			if q.Get("task") != taskName || q.Get("origin") != c.origin || q.Get("follow") != "false" {
				t.Errorf("%s: log request %v, want task %s, origin %s, follow false", c.name, q, taskName, c.origin)
			}
		}
	}
}

func TestJobLogsFollowFinished(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-logs", "exit 0", nil))
	a.setLogs("job-logs", "line one\nline two\n", "")
	var out bytes.Buffer

	err := e.JobLogs(t.Context(), &engine.JobLogsRequest{Name: "job-logs", Follow: true}, &out)

	if err != nil || out.String() != "line one\nline two\n" {
		t.Errorf("JobLogs follow = %q, %v; want both lines", out.String(), err)
	}
}

func TestJobLogsWithoutAllocation(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	a.holdPending = true
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-wait", "exit 0", nil))
	a.mu.Lock()
	a.allocs = map[string]*api.Allocation{}
	a.mu.Unlock()
	var out bytes.Buffer

	err := e.JobLogs(t.Context(), &engine.JobLogsRequest{Name: "job-wait"}, &out)

	if err != nil || out.Len() != 0 {
		t.Errorf("JobLogs = %q, %v; want no output and no error", out.String(), err)
	}
}

func TestLastLines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		n      int
		writes []string
		want   string
	}{
		{2, []string{"a\nb\nc\n"}, "b\nc\n"},
		{2, []string{"a\nb", "\nc"}, "b\nc"},
		{5, []string{"a\nb\n"}, "a\nb\n"},
		{1, []string{"abc", "def\n"}, "abcdef\n"},
	}
	for _, c := range cases {
		l := &lastLines{n: c.n}
		for _, w := range c.writes {
			_, _ = l.Write([]byte(w))
		}
		if got := string(l.bytes()); got != c.want {
			t.Errorf("last %d of %q = %q, want %q", c.n, c.writes, got, c.want)
		}
	}
}

func TestSkipFirstLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := &skipFirstLine{w: &out}

	for _, w := range []string{"tial line", " end\nfull 1\n", "full 2\n"} {
		_, _ = s.Write([]byte(w))
	}

	if out.String() != "full 1\nfull 2\n" {
		t.Errorf("output = %q, want the lines after the partial first one", out.String())
	}
}
