package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/store"
)

var jobStatuses = []string{lifecycle.InQueue, lifecycle.Waiting, lifecycle.Running, lifecycle.Completed, lifecycle.Error, lifecycle.Stopped}

func resourceTiers() []string {
	return sortedKeys(dispatch.Tiers)
}

func (s *Server) listJobs(_ http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	filter, err := readJobFilter(r)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	if _, err := s.store.Spider(r.Context(), p.PID, sid); err != nil {
		return nil, err
	}
	jobs, count, err := s.store.ListJobs(r.Context(), sid, filter, page.store())
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.JID
	}
	vars, err := s.store.EnvVarsOfJobs(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]jobDTO, len(jobs))
	for i := range jobs {
		out[i] = jobToDTO(&jobs[i], vars[jobs[i].JID])
	}
	return envelope(r, page, count, out)
}

func readJobFilter(r *http.Request) (store.JobFilter, error) {
	q := r.URL.Query()
	f := store.JobFilter{Status: q.Get("status"), Tag: q.Get("tag")}
	if f.Status != "" && !lifecycle.Valid(f.Status) {
		return f, errField("status", fmt.Sprintf("%q is not a valid status; use one of %s.", f.Status, strings.Join(jobStatuses, ", ")))
	}
	if raw := q.Get("cronjob"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			return f, errField("cronjob", "A cron job id must be a positive integer.")
		}
		f.CronjobID = id
	}
	return f, nil
}

// createJob queues a run of a spider. With ?sync=true it is launched before the answer.
func (s *Server) createJob(w http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRun)
	if err != nil {
		return nil, err
	}
	spider, err := s.store.Spider(r.Context(), p.PID, sid)
	if err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	job := &store.Job{ProjectID: p.PID, SpiderID: sid, SpiderName: spider.Name}
	s.readJobCreate(r.Context(), f, job)
	if err := f.err(); err != nil {
		return nil, err
	}

	if err := s.store.CreateJob(r.Context(), job); err != nil {
		return nil, err
	}
	s.launch(r, job.JID)
	return created(map[string]any{
		"jid": job.JID, "name": job.Name(), "args": jobToDTO(job, nil).Args, "env_vars": envVarsDTO(job.EnvVars),
		"tags": jobToDTO(job, nil).Tags, "job_status": job.Status, "cronjob": job.CronjobID,
		"data_expiry_days": job.DataExpiryDays, "data_status": job.DataStatus, "resource_tier": job.ResourceTier,
	}), nil
}

// launch dispatches a new job now for ?sync=true, or enqueues it.
func (s *Server) launch(r *http.Request, jid int64) {
	if r.URL.Query().Get("sync") == "true" && s.dispatcher != nil {
		if err := s.dispatcher.DispatchJob(r.Context(), jid); err == nil {
			return
		} else {
			s.log.Warn("launch job now, queueing it instead", "jid", jid, "error", err)
		}
	}
	if err := s.queue.EnqueueDispatch(jid); err != nil {
		// The reconcile enqueues jobs left IN_QUEUE, so the job is not lost.
		s.log.Warn("enqueue job", "jid", jid, "error", err)
	}
}

// readJobCreate fills a new job from the request body, recording field errors in f.
func (s *Server) readJobCreate(ctx context.Context, f *fields, job *store.Job) {
	job.DataStatus, job.ResourceTier = "PERSISTENT", dispatch.DefaultTier
	if v, ok := f.choice("data_status", dataStatuses...); ok {
		job.DataStatus = v
	}
	if v, ok := f.choice("resource_tier", resourceTiers()...); ok {
		job.ResourceTier = v
	}
	if job.DataStatus == "PENDING" {
		days := 1
		if v, ok := f.integer("data_expiry_days", 1, 32767); ok {
			days = int(v)
		}
		job.DataExpiryDays = &days
	}
	if v, ok := f.integer("cronjob", 1, 1<<62); ok {
		job.CronjobID = &v
	}
	for i, a := range f.objects("args") {
		name, nameOK := a["name"].(string)
		value, valueOK := a["value"].(string)
		if !nameOK || !valueOK || name == "" || len(name) > 1000 || len(value) > 1000 {
			f.fail("args", fmt.Sprintf("Item %d: name and value must be strings of at most 1000 characters, and name may not be blank.", i))
			continue
		}
		job.Args = append(job.Args, store.Arg{Name: name, Value: value})
	}
	for i, t := range f.objects("tags") {
		name, ok := t["name"].(string)
		if !ok || strings.TrimSpace(name) == "" || len(name) > 50 {
			f.fail("tags", fmt.Sprintf("Item %d: name must be a non-blank string of at most 50 characters.", i))
			continue
		}
		job.Tags = append(job.Tags, name)
	}
	job.EnvVars = s.readEnvVars(ctx, f, job.ProjectID)
}

// readEnvVars reads env_vars entries {evid?, name, value, masked}. An entry with an evid copies
// that variable, which must belong to the same project; this is how clients pass masked values
// on without knowing them.
func (s *Server) readEnvVars(ctx context.Context, f *fields, pid string) []store.EnvVar {
	var out []store.EnvVar
	for i, e := range f.objects("env_vars") {
		if raw, ok := e["evid"]; ok && raw != nil {
			evid, err := strconv.ParseInt(fmt.Sprint(raw), 10, 64)
			if err != nil || evid < 1 {
				f.fail("env_vars", fmt.Sprintf("Item %d: evid must be a positive integer.", i))
				continue
			}
			src, err := s.store.EnvVarInProject(ctx, pid, evid)
			if err != nil {
				f.fail("env_vars", fmt.Sprintf("Item %d: environment variable %d does not exist in this project.", i, evid))
				continue
			}
			out = append(out, store.EnvVar{Name: src.Name, Value: src.Value, Masked: src.Masked})
			continue
		}
		name, nameOK := e["name"].(string)
		value, valueOK := e["value"].(string)
		masked, _ := e["masked"].(bool)
		if !nameOK || strings.TrimSpace(name) == "" || len(name) > 1000 {
			f.fail("env_vars", fmt.Sprintf("Item %d: name must be a non-blank string of at most 1000 characters.", i))
			continue
		}
		if !valueOK || value == "" || len(value) > 12000 {
			f.fail("env_vars", fmt.Sprintf("Item %d (%s): value must be a non-empty string of at most 12000 characters.", i, name))
			continue
		}
		out = append(out, store.EnvVar{Name: name, Value: value, Masked: masked})
	}
	return out
}

func (s *Server) getJob(_ http.ResponseWriter, r *http.Request) (any, error) {
	job, _, err := s.jobFor(r, actRead)
	if err != nil {
		return nil, err
	}

	if job.Status == lifecycle.Running {
		s.overlayLiveStats(r.Context(), job)
	}
	vars, err := s.store.JobEnvVars(r.Context(), job.JID)
	if err != nil {
		return nil, err
	}
	return jobToDTO(job, vars), nil
}

// overlayLiveStats shows a running job's counters from its live stats, without saving them.
func (s *Server) overlayLiveStats(ctx context.Context, job *store.Job) {
	stats, err := s.stats.Read(ctx, job.Key())
	if err != nil {
		s.log.Warn("read live stats", "jid", job.JID, "error", err)
		return
	}
	if len(stats) == 0 {
		return
	}
	c := livestats.CountersOf(stats)
	job.ItemCount, job.RequestCount, job.TotalResponseBytes, job.LifespanMicros = c.ItemCount, c.RequestCount, c.TotalResponseBytes, c.LifespanMicros
}

// jobFor loads the job of the path. A user needs a role that allows act on the project; a
// job token may only reach its own job, and gets actor JobProcess.
func (s *Server) jobFor(r *http.Request, act action) (*store.Job, lifecycle.Actor, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, 0, err
	}
	jid, err := pathID(r, "jid")
	if err != nil {
		return nil, 0, err
	}
	pid, err := pathPID(r)
	if err != nil {
		return nil, 0, err
	}
	if p := principalOf(r); p != nil && p.JobID != 0 {
		if p.JobID != jid {
			return nil, 0, errDetail(http.StatusForbidden, "A job token may only report on its own job.")
		}
		job, err := s.store.Job(r.Context(), pid, sid, jid)
		return job, lifecycle.JobProcess, err
	}
	if _, _, err := s.projectFor(r, act); err != nil {
		return nil, 0, err
	}
	job, err := s.store.Job(r.Context(), pid, sid, jid)
	return job, lifecycle.User, err
}

// updateJob applies a status change, counters or a data-persistence change. The job itself
// (through its token) reports RUNNING, COMPLETED or ERROR with counters; a user may only stop
// the job or change how long its data is kept.
func (s *Server) updateJob(w http.ResponseWriter, r *http.Request) (any, error) {
	job, actor, err := s.jobFor(r, actRun)
	if err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	update := readJobUpdate(f, actor)
	if err := f.err(); err != nil {
		return nil, err
	}
	if update.Status != nil && *update.Status == job.Status {
		update.Status = nil
	}
	if update.Status != nil {
		if err := lifecycle.Check(job.Status, *update.Status, actor); err != nil {
			return nil, errMessage(http.StatusBadRequest, transitionMessage(err))
		}
		update.FromStatus = job.Status
	}

	updated, err := s.store.UpdateJob(r.Context(), job.JID, update)
	if errors.Is(err, store.ErrConflict) {
		return nil, errMessage(http.StatusConflict, "The job's status changed meanwhile; read it again and retry.")
	}
	if err != nil {
		return nil, err
	}
	s.afterStatusChange(r.Context(), updated, job.Status)
	return jobUpdateDTO(updated), nil
}

func transitionMessage(err error) string {
	if errors.Is(err, lifecycle.ErrJobStopped) {
		return "Job is stopped"
	}
	return strings.TrimPrefix(err.Error(), lifecycle.ErrInvalidTransition.Error()+": ")
}

// readJobUpdate reads the fields an actor may change, recording errors in f.
func readJobUpdate(f *fields, actor lifecycle.Actor) store.JobUpdate {
	var u store.JobUpdate
	if v, ok := f.choice("status", jobStatuses...); ok {
		u.Status = &v
	}
	counters := []struct {
		name string
		dst  **int64
	}{{"total_response_bytes", &u.TotalResponseBytes}, {"item_count", &u.ItemCount}, {"request_count", &u.RequestCount}}
	for _, c := range counters {
		if v, ok := f.integer(c.name, 0, 1<<62); ok {
			if actor != lifecycle.JobProcess {
				f.fail(c.name, "Only the job itself reports its counters.")
				continue
			}
			*c.dst = &v
		}
	}
	if raw, ok := f.str("lifespan", 64); ok {
		micros, err := parseDuration(raw)
		switch {
		case err != nil:
			f.fail("lifespan", err.Error())
		case actor != lifecycle.JobProcess:
			f.fail("lifespan", "Only the job itself reports its lifespan.")
		default:
			u.LifespanMicros = &micros
		}
	}
	if reason, ok := f.str("error_reason", 200000); ok && actor == lifecycle.JobProcess {
		u.ErrorReason = &reason
	}
	readProxyUsage(f, &u, actor)
	readDataPersistence(f, &u, actor)
	return u
}

func readDataPersistence(f *fields, u *store.JobUpdate, actor lifecycle.Actor) {
	status, ok := f.choice("data_status", dataStatuses...)
	if !ok {
		return
	}
	if actor == lifecycle.JobProcess {
		f.fail("data_status", "A job cannot change how long its own data is kept.")
		return
	}
	u.DataStatus = &status
	var days *int
	if status == "PENDING" {
		n := 1
		if v, ok := f.integer("data_expiry_days", 1, 32767); ok {
			n = int(v)
		}
		days = &n
	}
	u.DataExpiryDays = &days
}

// afterStatusChange revokes the token of a job that ended and stops a job a user stopped.
func (s *Server) afterStatusChange(ctx context.Context, job *store.Job, previous string) {
	if job.Status == previous || !lifecycle.Terminal(job.Status) {
		return
	}
	if job.Status == lifecycle.Stopped {
		// Stopping waits for the process to end; the client need not wait for it.
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			s.dispatcher.StopJob(ctx, job, previous)
		}()
		return
	}
	if err := s.store.DeleteJobTokens(ctx, job.JID); err != nil {
		s.log.Warn("revoke job token", "jid", job.JID, "error", err)
	}
}

// stopJob serves PUT .../jobs/{jid}/stop, which estela-cli calls to stop a job.
func (s *Server) stopJob(_ http.ResponseWriter, r *http.Request) (any, error) {
	job, actor, err := s.jobFor(r, actRun)
	if err != nil {
		return nil, err
	}
	if err := lifecycle.Check(job.Status, lifecycle.Stopped, actor); err != nil {
		return nil, errMessage(http.StatusBadRequest, transitionMessage(err))
	}
	stopped := lifecycle.Stopped
	updated, err := s.store.UpdateJob(r.Context(), job.JID, store.JobUpdate{FromStatus: job.Status, Status: &stopped})
	if errors.Is(err, store.ErrConflict) {
		return nil, errMessage(http.StatusConflict, "The job's status changed meanwhile; read it again and retry.")
	}
	if err != nil {
		return nil, err
	}
	s.afterStatusChange(r.Context(), updated, job.Status)
	return jobUpdateDTO(updated), nil
}

func jobUpdateDTO(j *store.Job) map[string]any {
	proxy := j.ProxyUsageData
	if proxy == nil {
		proxy = map[string]any{}
	}
	return map[string]any{
		"jid": j.JID, "status": j.Status, "lifespan": formatDuration(j.LifespanMicros),
		"total_response_bytes": j.TotalResponseBytes, "item_count": j.ItemCount, "request_count": j.RequestCount,
		"data_status": j.DataStatus, "data_expiry_days": j.DataExpiryDays, "proxy_usage_data": proxy,
	}
}
