package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// fakeAgent is an httptest server speaking the subset of the Nomad HTTP API
// the plugin uses. Its request and response shapes follow Nomad's API
// documentation (website/content/api-docs in hashicorp/nomad: jobs.mdx,
// allocations.mdx, events.mdx, client.mdx and nodes.mdx). It encodes them
// with the client library's own types.
//
// A registered job gets one allocation at once, which behaves by the task's
// command line: "exit N" exits with N, "oom" is killed by the OOM killer,
// "sleep" runs until stopped, "echo TEXT" prints TEXT and exits with 0. An
// image named "missing" fails to pull. With holdPending set, allocations
// stay pending.
type fakeAgent struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	index       uint64
	jobs        map[string]*api.Job
	allocs      map[string]*api.Allocation // by allocation ID
	logs        map[string]map[string]string
	nodes       []*api.NodeListStub
	calls       []string
	registers   []fakeRequest
	deregisters []fakeRequest
	logQueries  []url.Values
	history     []api.Events
	subs        map[chan api.Events]bool
	holdPending bool
	nextAlloc   int
	done        chan struct{}
}

type fakeRequest struct {
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

func newFakeAgent(t *testing.T) *fakeAgent {
	a := &fakeAgent{
		t:      t,
		jobs:   map[string]*api.Job{},
		allocs: map[string]*api.Allocation{},
		logs:   map[string]map[string]string{},
		subs:   map[chan api.Events]bool{},
		index:  100,
		done:   make(chan struct{}),
	}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(func() {
		close(a.done)
		a.srv.Close()
	})
	return a
}

func (a *fakeAgent) callLog() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func (a *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls = append(a.calls, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	path := r.URL.Path
	switch {
	case path == "/v1/status/leader":
		writeJSON(w, 0, "127.0.0.1:4647")
	case path == "/v1/jobs" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		a.register(w, r)
	case path == "/v1/jobs" && r.Method == http.MethodGet:
		a.listJobs(w, r)
	case strings.HasPrefix(path, "/v1/job/"):
		a.serveJob(w, r, strings.TrimPrefix(path, "/v1/job/"))
	case path == "/v1/allocations":
		a.listAllocs(w, r)
	case path == "/v1/event/stream":
		a.stream(w, r)
	case strings.HasPrefix(path, "/v1/client/fs/logs/"):
		a.serveLogs(w, r, strings.TrimPrefix(path, "/v1/client/fs/logs/"))
	case path == "/v1/nodes":
		a.mu.Lock()
		defer a.mu.Unlock()
		writeJSON(w, a.index, a.nodes)
	default:
		http.Error(w, "Invalid URL: "+path, http.StatusNotFound)
	}
}

// writeJSON writes v with the X-Nomad-Index header of blocking queries.
func writeJSON(w http.ResponseWriter, index uint64, v any) {
	w.Header().Set("Content-Type", "application/json")
	if index > 0 {
		w.Header().Set("X-Nomad-Index", strconv.FormatUint(index, 10))
	}
	_ = json.NewEncoder(w).Encode(v)
}

func (a *fakeAgent) register(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req api.JobRegisterRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Job == nil || req.Job.ID == nil {
		http.Error(w, fmt.Sprintf("invalid job: %v", err), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.registers = append(a.registers, fakeRequest{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	id := *req.Job.ID
	if req.EnforceIndex && req.JobModifyIndex == 0 && a.jobs[id] != nil {
		http.Error(w, api.RegisterEnforceIndexErrPrefix+" 0: job already exists", http.StatusInternalServerError)
		return
	}
	a.index++
	job := req.Job
	job.Status, job.Stop = new("pending"), new(false)
	job.CreateIndex, job.ModifyIndex, job.JobModifyIndex = new(a.index), new(a.index), new(a.index)
	a.jobs[id] = job
	a.publish(api.Event{Topic: api.TopicJob, Type: "JobRegistered", Key: id, Payload: payload("Job", job)})
	a.place(job)
	writeJSON(w, 0, api.JobRegisterResponse{EvalID: "eval-" + id, JobModifyIndex: a.index})
}

// place creates the job's allocation and runs it. Callers hold a.mu.
func (a *fakeAgent) place(job *api.Job) {
	a.nextAlloc++
	a.index++
	task := job.TaskGroups[0].Tasks[0]
	alloc := &api.Allocation{
		ID: fmt.Sprintf("%08d-0000-0000-0000-000000000000", a.nextAlloc), Namespace: deref(job.Namespace),
		NodeID: "node-1", JobID: *job.ID, TaskGroup: *job.TaskGroups[0].Name,
		DesiredStatus: "run", ClientStatus: allocPending, CreateIndex: a.index, ModifyIndex: a.index,
		CreateTime: time.Now().UnixNano(), ModifyTime: time.Now().UnixNano(),
		TaskStates: map[string]*api.TaskState{task.Name: {State: "pending", Events: []*api.TaskEvent{{Type: api.TaskReceived}}}},
		AllocatedResources: &api.AllocatedResources{Tasks: map[string]*api.AllocatedTaskResources{task.Name: {
			Cpu:    api.AllocatedCpuResources{CpuShares: int64(deref(task.Resources.CPU))},
			Memory: api.AllocatedMemoryResources{MemoryMB: int64(deref(task.Resources.MemoryMB))},
		}}},
	}
	a.allocs[alloc.ID] = alloc
	a.publishAlloc(alloc)
	if !a.holdPending {
		a.run(job, alloc, task)
	}
}

var exitPattern = regexp.MustCompile(`exit ([0-9]+)`)

// run moves a pending allocation on by the task's command. Callers hold a.mu.
func (a *fakeAgent) run(job *api.Job, alloc *api.Allocation, task *api.Task) {
	state := alloc.TaskStates[task.Name]
	image, _ := task.Config["image"].(string)
	if strings.Contains(image, "missing") {
		msg := fmt.Sprintf("Failed to pull `%s`: Error response from daemon: manifest unknown", image)
		a.finish(job, alloc, state, allocFailed, &api.TaskEvent{Type: api.TaskDriverFailure, DriverError: msg, DisplayMessage: msg, FailsTask: true})
		return
	}
	state.State, state.StartedAt = "running", time.Now().UTC()
	state.Events = append(state.Events, &api.TaskEvent{Type: api.TaskStarted})
	alloc.ClientStatus = allocRunning
	job.Status = new("running")
	a.index++
	alloc.ModifyIndex = a.index
	a.publishAlloc(alloc)
	cmd := commandLine(task)
	switch {
	case strings.HasPrefix(cmd, "echo "):
		a.logs[alloc.ID] = map[string]string{"stdout": strings.TrimPrefix(cmd, "echo ") + "\n", "stderr": ""}
		a.finish(job, alloc, state, allocComplete, &api.TaskEvent{Type: api.TaskTerminated, Details: map[string]string{"exit_code": "0", "oom_killed": "false"}})
	case exitPattern.MatchString(cmd):
		code, _ := strconv.Atoi(exitPattern.FindStringSubmatch(cmd)[1])
		status := allocComplete
		if code != 0 {
			status = allocFailed
		}
		a.finish(job, alloc, state, status, &api.TaskEvent{Type: api.TaskTerminated, ExitCode: code, Details: map[string]string{"exit_code": strconv.Itoa(code), "oom_killed": "false"}})
	case strings.Contains(cmd, "oom"):
		a.finish(job, alloc, state, allocFailed, &api.TaskEvent{Type: api.TaskTerminated, ExitCode: 137, DisplayMessage: "OOM Killed", Details: map[string]string{"exit_code": "137", "oom_killed": "true"}})
	}
}

func commandLine(task *api.Task) string {
	var words []string
	for _, key := range []string{"entrypoint", "args"} {
		switch v := task.Config[key].(type) {
		case []any:
			for _, w := range v {
				words = append(words, fmt.Sprint(w))
			}
		case []string:
			words = append(words, v...)
		}
	}
	return strings.Join(words, " ")
}

// finish ends an allocation with event. Callers hold a.mu.
func (a *fakeAgent) finish(job *api.Job, alloc *api.Allocation, state *api.TaskState, status string, event *api.TaskEvent) {
	state.State, state.Failed, state.FinishedAt = "dead", status == allocFailed, time.Now().UTC()
	state.Events = append(state.Events, event)
	if status == allocFailed {
		state.Events = append(state.Events, &api.TaskEvent{Type: api.TaskNotRestarting, DisplayMessage: "Policy allows no restarts"})
	}
	alloc.ClientStatus = status
	a.index++
	alloc.ModifyIndex, alloc.ModifyTime = a.index, time.Now().UnixNano()
	job.Status = new("dead")
	a.publishAlloc(alloc)
}

func (a *fakeAgent) serveJob(w http.ResponseWriter, r *http.Request, rest string) {
	id, sub, _ := strings.Cut(rest, "/")
	a.mu.Lock()
	defer a.mu.Unlock()
	job := a.jobs[id]
	if job == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	switch {
	case r.Method == http.MethodGet && sub == "":
		writeJSON(w, a.index, job)
	case r.Method == http.MethodGet && sub == "allocations":
		stubs := []*api.AllocationListStub{}
		for _, alloc := range a.allocs {
			if alloc.JobID == id {
				stubs = append(stubs, stubOf(alloc, true))
			}
		}
		writeJSON(w, a.index, stubs)
	case r.Method == http.MethodDelete && sub == "":
		a.deregister(w, r, job)
	default:
		http.Error(w, "Invalid URL", http.StatusNotFound)
	}
}

// deregister stops or purges a job: it publishes the job's event, then
// stops its allocations, in the order Nomad does. Callers hold a.mu.
func (a *fakeAgent) deregister(w http.ResponseWriter, r *http.Request, job *api.Job) {
	a.deregisters = append(a.deregisters, fakeRequest{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
	purge := r.URL.Query().Get("purge") == "true"
	a.index++
	job.Stop, job.Status = new(true), new("dead")
	if purge {
		delete(a.jobs, *job.ID)
	}
	a.publish(api.Event{Topic: api.TopicJob, Type: "JobDeregistered", Key: *job.ID, Payload: map[string]any{"Job": toMap(job), "Deleted": purge}})
	for _, alloc := range a.allocs {
		if alloc.JobID != *job.ID {
			continue
		}
		if alloc.ClientStatus == allocRunning || alloc.ClientStatus == allocPending {
			alloc.DesiredStatus, alloc.DesiredDescription = "stop", "alloc not needed due to job update"
			state := alloc.TaskStates[taskName]
			a.finish(job, alloc, state, allocComplete, &api.TaskEvent{Type: api.TaskKilled, DisplayMessage: "Task successfully killed"})
		}
		if purge {
			delete(a.allocs, alloc.ID)
		}
	}
	writeJSON(w, 0, api.JobDeregisterResponse{EvalID: "eval-stop"})
}

func stubOf(alloc *api.Allocation, taskStates bool) *api.AllocationListStub {
	stub := allocStub(alloc)
	stub.Namespace, stub.AllocatedResources = alloc.Namespace, alloc.AllocatedResources
	if !taskStates {
		stub.TaskStates = nil
	}
	return stub
}

func (a *fakeAgent) listJobs(w http.ResponseWriter, r *http.Request) {
	withMeta := r.URL.Query().Get("meta") == "true"
	a.mu.Lock()
	defer a.mu.Unlock()
	stubs := []*api.JobListStub{}
	for _, job := range a.jobs {
		stub := &api.JobListStub{
			ID: *job.ID, Name: deref(job.Name), Namespace: deref(job.Namespace), Type: deref(job.Type),
			Stop: deref(job.Stop), Status: deref(job.Status), CreateIndex: deref(job.CreateIndex),
			ModifyIndex: deref(job.ModifyIndex), JobModifyIndex: deref(job.JobModifyIndex),
		}
		if withMeta {
			stub.Meta = job.Meta
		}
		stubs = append(stubs, stub)
	}
	writeJSON(w, a.index, stubs)
}

func (a *fakeAgent) listAllocs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	defer a.mu.Unlock()
	stubs := []*api.AllocationListStub{}
	for _, alloc := range a.allocs {
		stub := stubOf(alloc, q.Get("task_states") != "false")
		if q.Get("resources") != "true" {
			stub.AllocatedResources = nil
		}
		stubs = append(stubs, stub)
	}
	writeJSON(w, a.index, stubs)
}

func payload(key string, v any) map[string]any {
	return map[string]any{key: toMap(v)}
}

// toMap turns v into the generic JSON object an event payload decodes to.
func toMap(v any) map[string]any {
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// publish records an event and sends it to the subscribers. Callers hold a.mu.
func (a *fakeAgent) publish(ev api.Event) {
	ev.Index = a.index
	events := api.Events{Index: a.index, Events: []api.Event{ev}}
	a.history = append(a.history, events)
	for ch := range a.subs {
		ch <- events
	}
}

func (a *fakeAgent) publishAlloc(alloc *api.Allocation) {
	copied := *alloc
	a.publish(api.Event{Topic: api.TopicAllocation, Type: "AllocationUpdated", Key: alloc.ID, FilterKeys: []string{alloc.JobID}, Payload: payload("Allocation", &copied)})
}

// stream replays the events after the index parameter, then sends new ones
// as ndjson, with a heartbeat object first.
func (a *fakeAgent) stream(w http.ResponseWriter, r *http.Request) {
	from, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	ch := make(chan api.Events, 100)
	a.mu.Lock()
	var backlog []api.Events
	for _, events := range a.history {
		if events.Index > from {
			backlog = append(backlog, events)
		}
	}
	a.subs[ch] = true
	a.mu.Unlock()

	defer func() {
		a.mu.Lock()
		delete(a.subs, ch)
		a.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}\n")
	enc := json.NewEncoder(w)
	for _, events := range backlog {
		_ = enc.Encode(events)
	}
	w.(http.Flusher).Flush()

	for {
		select {
		case events := <-ch:
			_ = enc.Encode(events)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		case <-a.done:
			return
		}
	}
}

// serveLogs writes the log in StreamFrame objects, applying origin and
// offset as the client fs API does.
func (a *fakeAgent) serveLogs(w http.ResponseWriter, r *http.Request, allocID string) {
	q := r.URL.Query()
	a.mu.Lock()
	a.logQueries = append(a.logQueries, q)
	_, known := a.allocs[allocID]
	data := a.logs[allocID][q.Get("type")]
	a.mu.Unlock()
	if !known {
		http.Error(w, "unknown allocation", http.StatusNotFound)
		return
	}
	if q.Get("task") != taskName {
		http.Error(w, "unknown task name", http.StatusBadRequest)
		return
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	if q.Get("origin") == "end" {
		offset = max(len(data)-offset, 0)
	}
	data = data[min(offset, len(data)):]
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	for chunk := range chunks(data, 8) {
		_ = enc.Encode(api.StreamFrame{Data: []byte(chunk), File: "alloc/logs/" + taskName + "." + q.Get("type") + ".0", Offset: int64(offset)})
	}
}

func chunks(s string, size int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			n := min(size, len(s))
			if !yield(s[:n]) {
				return
			}
			s = s[n:]
		}
	}
}

func (a *fakeAgent) setLogs(jobID, stdout, stderr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, alloc := range a.allocs {
		if alloc.JobID == jobID {
			a.logs[id] = map[string]string{"stdout": stdout, "stderr": stderr}
		}
	}
}

func (a *fakeAgent) logRequests() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.logQueries...)
}
