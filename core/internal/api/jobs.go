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

// listJobs returns one page of a spider's jobs, newest first, running ones with their live
// counters.
//
// The job list is the busiest route, so one statement reads the token's user, the user's role,
// the count and the page. Any request but that of an active user allowed to read a live
// spider goes on to listJobsAuthenticated, which responds as every route does.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) (any, error) {
	pid, sid, page, filter, err := readJobListParams(r)
	if err != nil {
		// A request without a valid token gets its 401 first, as on every route.
		if _, authErr := s.authenticate(r); authErr != nil {
			return nil, authErr
		}
		return nil, err
	}
	key, _ := r.Context().Value(tokenKeyKey{}).(string)
	list, err := s.store.ListJobsForToken(r.Context(), pid, sid, key, filter, page.store())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil || list.Caller == nil || !allowed(list.Caller, list.CallerRole, actRead) {
		r, err := s.authenticate(r)
		if err != nil {
			return nil, err
		}
		return s.listJobsAuthenticated(w, r, sid, page, filter)
	}
	return s.jobListPage(r, page, list)
}

// readJobListParams reads the job list's path and query parameters, in the order in which
// every project route checks them.
func readJobListParams(r *http.Request) (pid string, sid int64, page pageParams, filter store.JobFilter, err error) {
	if sid, err = pathID(r, "sid"); err != nil {
		return
	}
	var pageErr, filterErr error
	page, pageErr = readPage(r, 100, 100)
	filter, filterErr = readJobFilter(r)
	if err = joinFieldErrors(pageErr, filterErr); err != nil {
		return
	}
	pid, err = pathPID(r)
	return
}

// listJobsAuthenticated serves a job list request whose token was authenticated.
func (s *Server) listJobsAuthenticated(_ http.ResponseWriter, r *http.Request, sid int64, page pageParams, filter store.JobFilter) (any, error) {
	pid, user, err := projectAndCaller(r)
	if err != nil {
		return nil, err
	}
	// The list's statement reads the caller's role too. When it finds no live spider of a
	// live project, projectFor checks the project and the role. So the responses come in the
	// order of every project route: the project's 404, then the 403, then the spider's 404.
	list, err := s.store.ListJobsFor(r.Context(), pid, sid, user.ID, filter, page.store())
	if errors.Is(err, store.ErrNotFound) {
		if _, _, projectErr := s.projectFor(r, actRead); projectErr != nil {
			return nil, projectErr
		}
	}
	if err != nil {
		return nil, err
	}
	if !allowed(user, list.CallerRole, actRead) {
		return nil, errForbidden
	}
	return s.jobListPage(r, page, list)
}

// jobListPage is the reply with a page of the job list, running jobs with their live counters.
func (s *Server) jobListPage(r *http.Request, page pageParams, list *store.JobList) (any, error) {
	s.overlayLiveCounters(r.Context(), list.Jobs)
	env, err := envelope(r, page, list.Count, list.Jobs)
	if err != nil {
		return nil, err
	}
	return (*jobPage)(&env), nil
}

// jobDTOs renders jobs with their env vars, loaded in one query, and running ones with their
// live counters.
func (s *Server) jobDTOs(r *http.Request, jobs []store.Job) ([]jobDTO, error) {
	s.overlayLiveCounters(r.Context(), jobs)
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
	return out, nil
}

func readJobFilter(r *http.Request) (store.JobFilter, error) {
	q := r.URL.Query()
	f := store.JobFilter{Status: q.Get("status"), Tag: q.Get("tag")}
	var statusErr, cronjobErr error
	if f.Status != "" && !lifecycle.Valid(f.Status) {
		statusErr = errField("status", fmt.Sprintf("%q is not a valid status; use one of %s.", f.Status, strings.Join(jobStatuses, ", ")))
	}
	if raw := q.Get("cronjob"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			cronjobErr = errField("cronjob", "A cron job id must be a positive integer.")
		} else {
			f.CronjobID = id
		}
	}
	return f, joinFieldErrors(statusErr, cronjobErr)
}

// createJob queues a run of a spider. With ?sync=true it is launched before the response.
func (s *Server) createJob(w http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	p, user, spider, err := s.spiderFor(r, actRun, sid)
	if err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	var req jobCreateRequest
	bind(f, &req)
	job := &store.Job{ProjectID: p.PID, SpiderID: sid, SpiderName: spider.Name, CronjobID: req.Cronjob,
		DataStatus: orDefault(req.DataStatus, "PERSISTENT"), ResourceTier: orDefault(req.ResourceTier, dispatch.DefaultTier)}
	if job.DataStatus == "PENDING" {
		days := orDefault(req.DataExpiryDays, 1)
		job.DataExpiryDays = &days
	}
	for _, a := range req.Args {
		job.Args = append(job.Args, store.Arg(a))
	}
	for _, t := range req.Tags {
		job.Tags = append(job.Tags, t.Name)
	}
	job.EnvVars = s.resolveEnvVars(r.Context(), f, p.PID, req.EnvVars)
	if req.Cronjob != nil {
		_, err := s.store.CronJob(r.Context(), p.PID, sid, *req.Cronjob)
		switch {
		case errors.Is(err, store.ErrNotFound):
			f.fail("cronjob", fmt.Sprintf("Cron job %d does not exist for this spider.", *req.Cronjob))
		case err != nil:
			return nil, err
		}
	}
	if err := f.err(); err != nil {
		return nil, err
	}

	activity := store.JobActivity{UserID: user.ID, Before: "run Job-", After: fmt.Sprintf(" for spider %s.", spider.Name)}
	if err := s.store.CreateJobWithActivity(r.Context(), job, activity); err != nil {
		return nil, err
	}
	s.launch(r, job.JID)
	view := jobToDTO(job, job.EnvVars)
	return created(jobCreatedDTO{JID: job.JID, Name: job.Name(), Args: view.Args, EnvVars: view.EnvVars, Tags: view.Tags,
		JobStatus: job.Status, Cronjob: job.CronjobID, DataExpiryDays: job.DataExpiryDays, DataStatus: job.DataStatus,
		ResourceTier: job.ResourceTier}), nil
}

// launch dispatches a new job now for ?sync=true, or notifies the workers that it is queued.
func (s *Server) launch(r *http.Request, jid int64) {
	if r.URL.Query().Get("sync") == "true" && s.dispatcher != nil {
		err := s.dispatcher.DispatchJob(r.Context(), jid)
		if err == nil {
			return
		}
		s.log.Warn("launch job now, queueing it instead", "jid", jid, "error", err)
	}
	if err := s.queue.NotifyQueued(); err != nil {
		// The job is IN_QUEUE in Postgres, where workers also look every second.
		s.log.Warn("notify workers of a new job failed; it starts at their next look, within a second", "jid", jid, "error", err)
	}
}

// resolveEnvVars turns the env_vars of a request into rows. An entry with an evid copies that
// variable, which must belong to the same project. Clients pass masked values on this way
// without knowing them.
func (s *Server) resolveEnvVars(ctx context.Context, f *fields, pid string, vars []envVarWrite) []store.EnvVar {
	var out []store.EnvVar
	seen := make(map[string]bool, len(vars))
	add := func(i int, v store.EnvVar) {
		if seen[v.Name] {
			f.fail("env_vars", fmt.Sprintf("Item %d: %q is given twice; give each variable once.", i, v.Name))
			return
		}
		seen[v.Name] = true
		out = append(out, v)
	}
	for i, e := range vars {
		if e.EVID != nil {
			src, err := s.store.EnvVarInProject(ctx, pid, *e.EVID)
			if err != nil {
				f.fail("env_vars", fmt.Sprintf("Item %d: environment variable %d does not exist in this project.", i, *e.EVID))
				continue
			}
			add(i, store.EnvVar{Name: src.Name, Value: src.Value, Masked: src.Masked})
			continue
		}
		if strings.TrimSpace(e.Name) == "" || e.Value == "" {
			f.fail("env_vars", fmt.Sprintf("Item %d: name and value are required unless evid names an existing variable.", i))
			continue
		}
		if !envVarName.MatchString(e.Name) {
			f.fail("env_vars", fmt.Sprintf("Item %d: %q is not a valid variable name; use letters, digits and _, not starting with a digit.", i, e.Name))
			continue
		}
		if strings.ContainsRune(e.Value, 0) {
			f.fail("env_vars", fmt.Sprintf("Item %d: the value of %q contains a NUL character, which a process environment cannot hold.", i, e.Name))
			continue
		}
		add(i, store.EnvVar{Name: e.Name, Value: e.Value, Masked: e.Masked})
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

// overlayLiveCounters shows the counters of the running jobs among jobs from their live
// stats, read in one round trip, without saving them. When Redis cannot be read, the jobs keep
// their stored counters.
func (s *Server) overlayLiveCounters(ctx context.Context, jobs []store.Job) {
	var keys []string
	for i := range jobs {
		if jobs[i].Status == lifecycle.Running {
			keys = append(keys, jobs[i].Key())
		}
	}
	if len(keys) == 0 {
		return
	}
	counters, err := s.stats.ReadCounters(ctx, keys)
	if err != nil {
		s.log.Warn("read live stats of listed jobs", "jobs", len(keys), "error", err)
		return
	}
	for i := range jobs {
		if c, ok := counters[jobs[i].Key()]; ok {
			jobs[i].ItemCount, jobs[i].RequestCount, jobs[i].TotalResponseBytes, jobs[i].LifespanMicros = c.ItemCount, c.RequestCount, c.TotalResponseBytes, c.LifespanMicros
		}
	}
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

	var req jobUpdateRequest
	bind(f, &req)
	update := readJobUpdate(f, &req, actor)
	if err := f.err(); err != nil {
		return nil, err
	}
	if update.Status != nil && *update.Status == job.Status {
		update.Status = nil
	}
	if update.Status != nil && actor == lifecycle.JobProcess && job.Status == lifecycle.Stopped && lifecycle.Terminal(*update.Status) {
		// A stopped job's last report, sent as it shuts down: its counters include the data it
		// sent after the stop, and the job stays STOPPED.
		update.Status, update.ErrorReason = nil, nil
	}
	if update.Status != nil {
		if err := lifecycle.Check(job.Status, *update.Status, actor); err != nil {
			return nil, errMessage(http.StatusBadRequest, transitionMessage(err))
		}
		update.FromStatus = job.Status
	}

	job, updated, err := s.applyJobUpdate(r.Context(), job, update, actor)
	if errors.Is(err, store.ErrConflict) {
		return nil, errMessage(http.StatusConflict, "The job's status changed meanwhile; read it again and retry.")
	}
	if err != nil {
		return nil, err
	}
	// The live stats are read before afterStatusChange, whose stop of a running job saves and
	// then deletes them.
	if updated.Status == lifecycle.Running || (updated.Status == lifecycle.Stopped && job.Status == lifecycle.Running) {
		s.overlayLiveStats(r.Context(), updated)
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

// readJobUpdate turns a bound request into a store update, recording in f the fields the actor
// may not change.
func readJobUpdate(f *fields, req *jobUpdateRequest, actor lifecycle.Actor) store.JobUpdate {
	u := store.JobUpdate{Status: req.Status}
	jobOnly := func(name string, present bool) bool {
		if present && actor != lifecycle.JobProcess {
			f.fail(name, "Only the job itself reports this field.")
			return false
		}
		return present
	}
	if jobOnly("total_response_bytes", req.TotalResponseBytes != nil) {
		u.TotalResponseBytes = req.TotalResponseBytes
	}
	if jobOnly("item_count", req.ItemCount != nil) {
		u.ItemCount = req.ItemCount
	}
	if jobOnly("request_count", req.RequestCount != nil) {
		u.RequestCount = req.RequestCount
	}
	if jobOnly("proxy_usage_data", req.ProxyUsageData != nil) {
		u.ProxyUsageData = req.ProxyUsageData
	}
	if jobOnly("error_reason", req.ErrorReason != nil) {
		u.ErrorReason = req.ErrorReason
	}
	if jobOnly("lifespan", req.Lifespan != nil) {
		micros, err := parseDuration(*req.Lifespan)
		if err != nil {
			f.fail("lifespan", err.Error())
		}
		u.LifespanMicros = &micros
	}
	if req.DataStatus != nil {
		if actor == lifecycle.JobProcess {
			f.fail("data_status", "A job cannot change how long its own data is kept.")
			return u
		}
		var days *int
		if *req.DataStatus == "PENDING" {
			n := orDefault(req.DataExpiryDays, 1)
			days = &n
		}
		u.DataStatus, u.DataExpiryDays = req.DataStatus, &days
	}
	return u
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
	if job.Status == lifecycle.Stopped {
		return jobUpdateDTO(job), nil
	}
	if err := lifecycle.Check(job.Status, lifecycle.Stopped, actor); err != nil {
		return nil, errMessage(http.StatusBadRequest, transitionMessage(err))
	}
	stopped := lifecycle.Stopped
	job, updated, err := s.applyJobUpdate(r.Context(), job, store.JobUpdate{FromStatus: job.Status, Status: &stopped}, actor)
	if errors.Is(err, store.ErrConflict) {
		return nil, errMessage(http.StatusConflict, "The job's status changed meanwhile; read it again and retry.")
	}
	if err != nil {
		return nil, err
	}
	if job.Status == lifecycle.Running {
		// The response shows the counters that the stop saves from the live stats.
		s.overlayLiveStats(r.Context(), updated)
	}
	s.afterStatusChange(r.Context(), updated, job.Status)
	return jobUpdateDTO(updated), nil
}

// stopRetries is how many times a user's stop is applied again after the job moved on.
const stopRetries = 3

// applyJobUpdate applies update to job and returns the job as it was just before the update,
// and as it is after. A user's stop that races with the worker moving the job on (from
// IN_QUEUE to WAITING to RUNNING) is applied again to the job's new status, so that the user
// sees no conflict for a change they did not make. A job stopped meanwhile is returned as is.
func (s *Server) applyJobUpdate(ctx context.Context, job *store.Job, update store.JobUpdate, actor lifecycle.Actor) (before, after *store.Job, err error) {
	stop := actor == lifecycle.User && update.Status != nil && *update.Status == lifecycle.Stopped
	for attempt := 1; ; attempt++ {
		after, err = s.store.UpdateJob(ctx, job.JID, update)
		if !errors.Is(err, store.ErrConflict) || !stop || attempt > stopRetries {
			return job, after, err
		}

		job, err = s.store.JobByID(ctx, job.JID)
		if err != nil {
			return nil, nil, err
		}
		if job.Status == lifecycle.Stopped {
			return job, job, nil
		}
		if err := lifecycle.Check(job.Status, lifecycle.Stopped, actor); err != nil {
			return nil, nil, errMessage(http.StatusBadRequest, transitionMessage(err))
		}
		update.FromStatus = job.Status
	}
}

func jobUpdateDTO(j *store.Job) jobUpdatedDTO {
	proxy := j.ProxyUsageData
	if proxy == nil {
		proxy = map[string]any{}
	}
	return jobUpdatedDTO{
		JID: j.JID, Status: j.Status, Lifespan: formatDuration(j.LifespanMicros), TotalResponseBytes: j.TotalResponseBytes,
		ItemCount: j.ItemCount, RequestCount: j.RequestCount, DataStatus: j.DataStatus, DataExpiryDays: j.DataExpiryDays,
		ProxyUsageData: proxy,
	}
}
