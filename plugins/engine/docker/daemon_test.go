package main

import (
	"archive/tar"
	"encoding/base64"
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

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"
)

// fakeDaemon is an httptest server speaking the subset of the Docker Engine
// API the plugin uses. Request and response shapes follow the Engine API
// reference (api/swagger.yaml of github.com/docker/docker v28.5.2), decoded
// with the client library's own types.
//
// A started container behaves by its command line: "echo TEXT" prints TEXT
// and exits with 0, "exit N" exits with N,
// "sleep" runs until stopped, "oom" is killed by the OOM killer, "missing-cmd"
// fails to start, and "estela-report-deploy" exits with reportExit.
type fakeDaemon struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	nextID     int
	containers map[string]*fakeContainer // by ID
	volumes    map[string]map[string]string
	images     map[string]bool
	// pullable lists the images /images/create can pull; nil means any.
	pullable   map[string]bool
	calls      []string // "METHOD /path" of every request, version prefix removed
	stops      []url.Values
	removes    []url.Values
	lists      []url.Values
	creates    []fakeCreate
	builds     []fakeBuild
	pushes     []http.Header
	pulls      []url.Values
	pullAuths  []string
	buildError string
	reportExit int
	subs       map[chan events.Message]filters.Args
	done       chan struct{}
}

type fakeContainer struct {
	ID      string
	Name    string
	Create  container.CreateRequest
	State   container.State
	Created time.Time
	stdout  string
	stderr  string
}

type fakeCreate struct {
	Name string
	Body []byte
}

type fakeBuild struct {
	Query  url.Values
	Header http.Header
	Files  map[string]string // tar entry name → content ("" for directories)
	Order  []string
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

func newFakeDaemon(t *testing.T) *fakeDaemon {
	d := &fakeDaemon{
		t:          t,
		containers: map[string]*fakeContainer{},
		volumes:    map[string]map[string]string{},
		images:     map[string]bool{},
		subs:       map[chan events.Message]filters.Args{},
		done:       make(chan struct{}),
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(func() {
		close(d.done)
		d.srv.Close()
	})
	return d
}

// host returns the daemon address for the host setting.
func (d *fakeDaemon) host() string {
	return "tcp://" + strings.TrimPrefix(d.srv.URL, "http://")
}

func (d *fakeDaemon) callLog() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func (d *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	d.mu.Lock()
	d.calls = append(d.calls, r.Method+" "+path)
	d.mu.Unlock()
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/_ping":
		w.Header().Set("Api-Version", "1.51")
		w.Header().Set("Ostype", "linux")
		_, _ = io.WriteString(w, "OK")
	case r.Method == http.MethodPost && path == "/containers/create":
		d.createContainer(w, r)
	case r.Method == http.MethodGet && path == "/containers/json":
		d.listContainers(w, r)
	case len(parts) >= 2 && parts[0] == "containers":
		d.serveContainer(w, r, parts[1], strings.Join(parts[2:], "/"))
	case r.Method == http.MethodGet && path == "/events":
		d.streamEvents(w, r)
	case len(parts) >= 1 && parts[0] == "volumes":
		d.serveVolumes(w, r, strings.Join(parts[1:], "/"))
	case r.Method == http.MethodPost && path == "/build":
		d.build(w, r)
	case r.Method == http.MethodPost && path == "/images/create":
		d.pull(w, r)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/push"):
		d.push(w, r)
	default:
		writeError(w, http.StatusNotFound, "page not found: "+r.Method+" "+path)
	}
}

func writeError(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (d *fakeDaemon) createContainer(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req container.CreateRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Config == nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid create body: %v", err))
		return
	}
	name := r.URL.Query().Get("name")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.creates = append(d.creates, fakeCreate{Name: name, Body: body})
	if c := d.lookup(name); c != nil && c.Name == name {
		writeError(w, http.StatusConflict, fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container %q.", name, c.ID))
		return
	}
	if !d.images[req.Image] {
		writeError(w, http.StatusNotFound, "No such image: "+req.Image)
		return
	}
	d.nextID++
	id := fmt.Sprintf("%064x", d.nextID)
	c := &fakeContainer{ID: id, Name: name, Create: req, Created: time.Now().UTC(),
		State: container.State{Status: container.StateCreated, StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z"}}
	d.containers[id] = c
	d.emit(c, events.ActionCreate)
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: []string{}})
}

// lookup finds a container as the daemon does: by full ID, by name, then by
// ID prefix. Callers hold d.mu.
func (d *fakeDaemon) lookup(ref string) *fakeContainer {
	if c, ok := d.containers[ref]; ok {
		return c
	}
	for _, c := range d.containers {
		if c.Name == strings.TrimPrefix(ref, "/") {
			return c
		}
	}
	for id, c := range d.containers {
		if ref != "" && strings.HasPrefix(id, ref) {
			return c
		}
	}
	return nil
}

func (d *fakeDaemon) serveContainer(w http.ResponseWriter, r *http.Request, ref, action string) {
	d.mu.Lock()
	c := d.lookup(ref)
	d.mu.Unlock()
	if c == nil {
		writeError(w, http.StatusNotFound, "No such container: "+ref)
		return
	}
	switch {
	case r.Method == http.MethodGet && action == "json":
		d.mu.Lock()
		resp := c.inspect()
		d.mu.Unlock()
		writeJSON(w, http.StatusOK, resp)
	case r.Method == http.MethodPost && action == "start":
		d.start(w, c)
	case r.Method == http.MethodPost && action == "stop":
		d.stop(w, r, c)
	case r.Method == http.MethodPost && action == "wait":
		d.wait(w, r, c)
	case r.Method == http.MethodGet && action == "logs":
		d.logs(w, r, c)
	case r.Method == http.MethodDelete && action == "":
		d.remove(w, r, c)
	default:
		writeError(w, http.StatusNotFound, "page not found")
	}
}

func (c *fakeContainer) inspect() container.InspectResponse {
	state := c.State
	config := *c.Create.Config
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: c.ID, Name: "/" + c.Name, Created: c.Created.Format(time.RFC3339Nano),
			State: &state, Image: config.Image, HostConfig: c.Create.HostConfig,
		},
		Config: &config,
	}
}

func (c *fakeContainer) commandLine() string {
	return strings.Join(append(append([]string{}, c.Create.Entrypoint...), c.Create.Cmd...), " ")
}

var exitPattern = regexp.MustCompile(`exit ([0-9]+)`)

func (d *fakeDaemon) start(w http.ResponseWriter, c *fakeContainer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.State.Status == container.StateRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	cmd := c.commandLine()
	if strings.Contains(cmd, "missing-cmd") {
		c.State.Error = `exec: "missing-cmd": executable file not found in $PATH`
		c.State.ExitCode = 127
		writeError(w, http.StatusBadRequest, "failed to create task for container: "+c.State.Error)
		return
	}
	now := time.Now().UTC()
	c.State.Status, c.State.Running, c.State.StartedAt = container.StateRunning, true, now.Format(time.RFC3339Nano)
	c.stdout, c.stderr = "out: "+c.Name+"\n", "err: "+c.Name+"\n"
	d.emit(c, events.ActionStart)
	switch {
	case strings.HasPrefix(cmd, "echo "):
		c.stdout, c.stderr = strings.TrimPrefix(cmd, "echo ")+"\n", ""
		d.exit(c, 0, false)
	case exitPattern.MatchString(cmd):
		code, _ := strconv.Atoi(exitPattern.FindStringSubmatch(cmd)[1])
		d.exit(c, code, false)
	case strings.Contains(cmd, "oom"):
		d.exit(c, 137, true)
	case strings.Contains(cmd, reportCommand):
		d.exit(c, d.reportExit, false)
	}
	w.WriteHeader(http.StatusNoContent)
}

// exit ends a running container. Callers hold d.mu.
func (d *fakeDaemon) exit(c *fakeContainer, code int, oom bool) {
	c.State.Status, c.State.Running = container.StateExited, false
	c.State.ExitCode, c.State.OOMKilled = code, oom
	c.State.FinishedAt = time.Now().UTC().Format(time.RFC3339Nano)
	d.emit(c, events.ActionDie)
}

func (d *fakeDaemon) stop(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stops = append(d.stops, r.URL.Query())
	if c.State.Status != container.StateRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	d.exit(c, 143, false)
	w.WriteHeader(http.StatusNoContent)
}

func (d *fakeDaemon) wait(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	for {
		d.mu.Lock()
		status, code := c.State.Status, c.State.ExitCode
		d.mu.Unlock()
		if status != container.StateRunning {
			writeJSON(w, http.StatusOK, container.WaitResponse{StatusCode: int64(code)})
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// logs writes the container's output in the multiplexed stream format of
// containers without a TTY: stdout first, then stderr.
func (d *fakeDaemon) logs(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	d.mu.Lock()
	stdout, stderr := c.stdout, c.stderr
	d.mu.Unlock()
	q := r.URL.Query()
	if q.Get("stdout") != "1" || q.Get("stderr") != "1" {
		writeError(w, http.StatusBadRequest, "expected stdout=1 and stderr=1")
		return
	}
	if tail := q.Get("tail"); tail == "1" {
		stdout = ""
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = stdcopy.NewStdWriter(w, stdcopy.Stdout).Write([]byte(stdout))
	_, _ = stdcopy.NewStdWriter(w, stdcopy.Stderr).Write([]byte(stderr))
}

func (d *fakeDaemon) remove(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removes = append(d.removes, r.URL.Query())
	if c.State.Status == container.StateRunning && r.URL.Query().Get("force") != "1" {
		writeError(w, http.StatusConflict, "cannot remove a running container: stop it first or use force")
		return
	}
	delete(d.containers, c.ID)
	d.emit(c, events.ActionDestroy)
	w.WriteHeader(http.StatusNoContent)
}

func (d *fakeDaemon) listContainers(w http.ResponseWriter, r *http.Request) {
	args, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	all := r.URL.Query().Get("all") == "1"
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lists = append(d.lists, r.URL.Query())
	list := []container.Summary{}
	for _, c := range d.containers {
		if (!all && c.State.Status != container.StateRunning) || !matchLabels(args, c.Create.Labels) {
			continue
		}
		list = append(list, container.Summary{
			ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Create.Image, Created: c.Created.Unix(),
			Labels: c.Create.Labels, State: c.State.Status, Status: humanStatus(c.State),
		})
	}
	writeJSON(w, http.StatusOK, list)
}

func humanStatus(s container.State) string {
	if s.Status == container.StateExited {
		return fmt.Sprintf("Exited (%d) 1 second ago", s.ExitCode)
	}
	return s.Status
}

// matchLabels applies the "label" filters: "key" needs the key, "key=value"
// the pair.
func matchLabels(args filters.Args, labels map[string]string) bool {
	for _, f := range args.Get("label") {
		key, value, withValue := strings.Cut(f, "=")
		got, ok := labels[key]
		if !ok || (withValue && got != value) {
			return false
		}
	}
	return true
}

// emit sends a container event to the matching subscribers. Callers hold d.mu.
func (d *fakeDaemon) emit(c *fakeContainer, action events.Action) {
	attrs := map[string]string{"name": c.Name, "image": c.Create.Image}
	for k, v := range c.Create.Labels {
		attrs[k] = v
	}
	if action == events.ActionDie {
		attrs["exitCode"] = strconv.Itoa(c.State.ExitCode)
	}
	now := time.Now()
	msg := events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: c.ID, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	for ch, args := range d.subs {
		if (args.Len() == 0 || args.ExactMatch("type", string(msg.Type))) && matchLabels(args, attrs) {
			ch <- msg
		}
	}
}

// streamEvents subscribes before it sends the response header, as the daemon
// does, so a client that got the header misses no event.
func (d *fakeDaemon) streamEvents(w http.ResponseWriter, r *http.Request) {
	args, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ch := make(chan events.Message, 100)
	d.mu.Lock()
	d.subs[ch] = args
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.subs, ch)
		d.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case msg := <-ch:
			_ = enc.Encode(msg)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		}
	}
}

func (d *fakeDaemon) serveVolumes(w http.ResponseWriter, r *http.Request, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && name == "create":
		var req volume.CreateOptions
		_ = json.NewDecoder(r.Body).Decode(&req)
		if _, ok := d.volumes[req.Name]; !ok {
			d.volumes[req.Name] = req.Labels
		}
		writeJSON(w, http.StatusCreated, fakeVolume(req.Name, d.volumes[req.Name]))
	case r.Method == http.MethodGet && name == "":
		args, _ := filters.FromJSON(r.URL.Query().Get("filters"))
		list := volume.ListResponse{Volumes: []*volume.Volume{}}
		for n, labels := range d.volumes {
			if matchLabels(args, labels) {
				list.Volumes = append(list.Volumes, fakeVolume(n, labels))
			}
		}
		writeJSON(w, http.StatusOK, list)
	case r.Method == http.MethodGet:
		labels, ok := d.volumes[name]
		if !ok {
			writeError(w, http.StatusNotFound, "get "+name+": no such volume")
			return
		}
		writeJSON(w, http.StatusOK, fakeVolume(name, labels))
	case r.Method == http.MethodDelete:
		if _, ok := d.volumes[name]; !ok {
			writeError(w, http.StatusNotFound, "get "+name+": no such volume")
			return
		}
		delete(d.volumes, name)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusNotFound, "page not found")
	}
}

func fakeVolume(name string, labels map[string]string) *volume.Volume {
	return &volume.Volume{Name: name, Driver: "local", Labels: labels, Mountpoint: "/var/lib/docker/volumes/" + name + "/_data", Scope: "local"}
}

func (d *fakeDaemon) build(w http.ResponseWriter, r *http.Request) {
	b := fakeBuild{Query: r.URL.Query(), Header: r.Header.Clone(), Files: map[string]string{}}
	tr := tar.NewReader(r.Body)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid build context: "+err.Error())
			return
		}
		data, _ := io.ReadAll(tr)
		b.Files[hdr.Name] = string(data)
		b.Order = append(b.Order, hdr.Name)
	}

	d.mu.Lock()
	d.builds = append(d.builds, b)
	failure := d.buildError
	if failure == "" {
		for _, tag := range b.Query["t"] {
			d.images[tag] = true
		}
	}
	d.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"stream":"Step 1/2 : FROM python:3.12\n"}`+"\n")
	if failure != "" {
		_, _ = fmt.Fprintf(w, `{"errorDetail":{"code":1,"message":%q},"error":%q}`+"\n", failure, failure)
		return
	}
	_, _ = io.WriteString(w, `{"aux":{"ID":"sha256:0123"}}`+"\n"+`{"stream":"Successfully built 0123\n"}`+"\n")
}

func (d *fakeDaemon) push(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.pushes = append(d.pushes, r.Header.Clone())
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"The push refers to repository"}`+"\n"+`{"status":"latest: digest: sha256:0123 size: 1234"}`+"\n")
}

func (d *fakeDaemon) pull(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref := q.Get("fromImage") + ":" + q.Get("tag")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pulls = append(d.pulls, q)
	d.pullAuths = append(d.pullAuths, r.Header.Get("X-Registry-Auth"))
	if d.pullable != nil && !d.pullable[ref] {
		writeError(w, http.StatusNotFound, "pull access denied for "+q.Get("fromImage")+", repository does not exist")
		return
	}
	d.images[ref] = true
	d.images[strings.TrimPrefix(ref, "docker.io/library/")] = true
	d.images[strings.TrimPrefix(ref, "docker.io/")] = true
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"Pulling from `+q.Get("fromImage")+`"}`+"\n"+`{"status":"Status: Downloaded newer image"}`+"\n")
}

// addContainer puts a container on the daemon directly, as if another
// client had created it.
func (d *fakeDaemon) addContainer(name string, labels map[string]string, state container.State) *fakeContainer {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	c := &fakeContainer{
		ID: fmt.Sprintf("%064x", d.nextID), Name: name, Created: time.Now().UTC(), State: state,
		Create: container.CreateRequest{Config: &container.Config{Image: "busybox", Labels: labels}, HostConfig: &container.HostConfig{}},
	}
	d.containers[c.ID] = c
	return c
}

func (d *fakeDaemon) container(name string) *fakeContainer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookup(name)
}

func (d *fakeDaemon) addImage(ref string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.images[ref] = true
}

// decodeAuthHeader decodes an X-Registry-Auth header value.
func decodeAuthHeader(t *testing.T, value string) registry.AuthConfig {
	t.Helper()
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		t.Fatalf("X-Registry-Auth %q is not base64url: %v", value, err)
	}
	var auth registry.AuthConfig
	if err := json.Unmarshal(raw, &auth); err != nil {
		t.Fatalf("X-Registry-Auth is not an auth config: %v", err)
	}
	return auth
}
