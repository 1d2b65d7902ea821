package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/scheduler"
	"github.com/estela-go/estela-go/core/internal/store"
)

const (
	cronJobsPath = spiderPath + "/cronjobs"
	cronJobPath  = cronJobsPath + "/{cjid:[0-9]+}"
)

// invalidSchedule is estela's message for a bad schedule. Clients show it unchanged.
const invalidSchedule = "Value is not a valid cron schedule."

func (s *Server) cronRoutes() []route {
	get := doc{summary: "Read a cron job", tag: "cron jobs", response: cronJobDTO{}}
	update := doc{summary: "Enable or disable a cron job, or change its schedule, arguments, tags, environment variables, tier or data persistence", tag: "cron jobs", request: cronJobUpdateRequest{}, response: cronJobDTO{}}
	runOnce := doc{summary: "Queue one run of a cron job now, with its current values", tag: "cron jobs", response: cronJobDTO{}}
	return []route{
		{http.MethodGet, projectPath + "/cronjobs", token, s.listProjectCronJobs, doc{summary: "List every cron job of a project, newest first", tag: "projects", response: cronJobListDTO{}, query: cronListQuery}},
		{http.MethodGet, cronJobsPath, token, s.listCronJobs, doc{summary: "List a spider's cron jobs, newest first", tag: "cron jobs", response: pageOf[cronJobDTO]{}, query: append(pageQuery, cronTagQuery)}},
		{http.MethodPost, cronJobsPath, token, s.createCronJob, doc{summary: "Schedule runs of a spider", tag: "cron jobs", request: cronJobCreateRequest{}, response: cronJobDTO{}, status: http.StatusCreated}},
		{http.MethodGet, cronJobPath, token, s.getCronJob, get},
		{http.MethodPut, cronJobPath, token, s.updateCronJob, update},
		{http.MethodPatch, cronJobPath, token, s.updateCronJob, update},
		{http.MethodDelete, cronJobPath, token, s.deleteCronJob, doc{summary: "Delete a cron job; its jobs are kept", tag: "cron jobs", status: http.StatusNoContent}},
		{http.MethodPost, cronJobPath + "/run_once", token, s.runCronJobOnce, runOnce},
		{http.MethodGet, cronJobPath + "/run_once", token, s.runCronJobOnce, doc{summary: "Same as POST, kept for estela-web", tag: "cron jobs", response: cronJobDTO{}}},
	}
}

var (
	cronTagQuery  = param{"tag", "only cron jobs with this tag", map[string]any{"type": "string"}}
	cronListQuery = []param{
		{"page", "page number, from 1", map[string]any{"type": "integer", "minimum": 1}},
		{"page_size", "results per page, 1 to 100, default 10", map[string]any{"type": "integer", "minimum": 1, "maximum": 100}},
	}
)

type cronJobCreateRequest struct {
	Cargs            []argWrite    `json:"cargs"`
	CenvVars         []envVarWrite `json:"cenv_vars" doc:"variables given to every run; with evid, a variable of the same project is copied"`
	Ctags            []tagWrite    `json:"ctags"`
	Schedule         string        `json:"schedule" validate:"required" maxlen:"255" doc:"a 5-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC"`
	UniqueCollection *bool         `json:"unique_collection" doc:"all runs share one items collection; false when absent"`
	DataStatus       string        `json:"data_status" validate:"required" enum:"PERSISTENT,PENDING"`
	DataExpiryDays   *int          `json:"data_expiry_days" min:"0" max:"32767" doc:"days each run's data is kept when data_status is PENDING, at least 1; 1 when absent; ignored when PERSISTENT"`
	ResourceTier     *string       `json:"resource_tier" enum:"TINY,XSMALL,SMALL,MEDIUM,LARGE,XLARGE,HUGE,XHUGE" doc:"LARGE when absent"`
}

// cronJobUpdateRequest changes the fields it names. The lists replace the whole list; form
// bodies, which estela-cli sends, carry them as JSON-encoded strings.
type cronJobUpdateRequest struct {
	Status           *string       `json:"status" enum:"ACTIVE,DISABLED"`
	Schedule         *string       `json:"schedule" maxlen:"255" doc:"a 5-field cron expression, evaluated in UTC"`
	UniqueCollection *bool         `json:"unique_collection"`
	DataStatus       *string       `json:"data_status" enum:"PERSISTENT,PENDING"`
	DataExpiryDays   *int          `json:"data_expiry_days" min:"0" max:"32767" doc:"at least 1; only for a cron job that is or becomes PENDING"`
	ResourceTier     *string       `json:"resource_tier" enum:"TINY,XSMALL,SMALL,MEDIUM,LARGE,XLARGE,HUGE,XHUGE"`
	Cargs            []argWrite    `json:"cargs"`
	CenvVars         []envVarWrite `json:"cenv_vars" doc:"with evid, or with value __MASKED__ and the name of a current variable, the stored value is kept"`
	Ctags            []tagWrite    `json:"ctags"`
}

// cronJobDTO is estela's SpiderCronJob, plus next_run.
type cronJobDTO struct {
	CJID             int64        `json:"cjid"`
	Spider           spiderRefDTO `json:"spider"`
	Created          string       `json:"created"`
	Name             string       `json:"name"`
	Cargs            []argDTO     `json:"cargs"`
	CenvVars         []envVarDTO  `json:"cenv_vars"`
	Ctags            []tagDTO     `json:"ctags"`
	Schedule         string       `json:"schedule"`
	Status           string       `json:"status"`
	UniqueCollection bool         `json:"unique_collection"`
	DataStatus       string       `json:"data_status"`
	DataExpiryDays   *int         `json:"data_expiry_days"`
	ResourceTier     string       `json:"resource_tier"`
	// NextRun is when the cron job fires next; null while it is disabled or idle.
	NextRun *string `json:"next_run"`
}

// cronJobListDTO is estela's {results, count} envelope of project-level lists.
type cronJobListDTO struct {
	Results []cronJobDTO `json:"results"`
	Count   int          `json:"count"`
}

func cronJobToDTO(c *store.CronJob, vars []store.EnvVar) cronJobDTO {
	args := make([]argDTO, len(c.Args))
	for i, a := range c.Args {
		args[i] = argDTO(a)
	}
	tags := make([]tagDTO, len(c.Tags))
	for i, t := range c.Tags {
		tags[i] = tagDTO{t}
	}
	dto := cronJobDTO{
		CJID: c.CJID, Spider: spiderRefDTO{c.SpiderID, c.SpiderName}, Created: formatJobTime(c.Created), Name: c.Name(),
		Cargs: args, CenvVars: envVarsDTO(vars), Ctags: tags, Schedule: c.Schedule, Status: c.Status,
		UniqueCollection: c.UniqueCollection, DataStatus: c.DataStatus, DataExpiryDays: c.DataExpiryDays,
		ResourceTier: c.ResourceTier,
	}
	if c.NextRun != nil && c.Status == store.CronActive {
		next := formatJobTime(*c.NextRun)
		dto.NextRun = &next
	}
	return dto
}

// cronJobDTOs renders cron jobs with their env vars, loaded in one query.
func (s *Server) cronJobDTOs(ctx context.Context, list []store.CronJob) ([]cronJobDTO, error) {
	ids := make([]int64, len(list))
	for i := range list {
		ids[i] = list[i].CJID
	}
	vars, err := s.store.EnvVarsOfCronJobs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]cronJobDTO, len(list))
	for i := range list {
		out[i] = cronJobToDTO(&list[i], vars[list[i].CJID])
	}
	return out, nil
}

func (s *Server) cronJobView(ctx context.Context, c *store.CronJob) (cronJobDTO, error) {
	vars, err := s.store.EnvVarsOfCronJobs(ctx, []int64{c.CJID})
	if err != nil {
		return cronJobDTO{}, err
	}
	return cronJobToDTO(c, vars[c.CJID]), nil
}

// cronJobFor loads the cron job of the path after checking that the caller may do act on the
// project, and returns it with the caller. A cron job of another spider or project is not found.
func (s *Server) cronJobFor(r *http.Request, act action) (*store.CronJob, *store.User, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, nil, err
	}
	cjid, err := pathID(r, "cjid")
	if err != nil {
		return nil, nil, err
	}
	p, user, err := s.projectFor(r, act)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.store.CronJob(r.Context(), p.PID, sid, cjid)
	return c, user, err
}

// recordCronActivity adds an action on a cron job to the project's activity feed. A failure is
// logged and swallowed, because the action itself has succeeded.
func (s *Server) recordCronActivity(ctx context.Context, user *store.User, pid string, cjid int64, description string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.store.RecordActivity(ctx, user.ID, pid, description); err != nil {
		s.log.Error("record cron job activity", "pid", pid, "cjid", cjid, "description", description, "error", err)
	}
}

// cronLabel is how estela's activity feed names a cron job.
func cronLabel(cjid int64) string {
	return "Sche-Job-" + strconv.FormatInt(cjid, 10)
}

func (s *Server) listCronJobs(_ http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	if _, err := s.store.SpiderInAnyState(r.Context(), p.PID, sid); err != nil {
		return nil, err
	}
	filter := store.CronJobFilter{ProjectID: p.PID, SpiderID: sid, Tag: r.URL.Query().Get("tag")}
	list, count, err := s.store.ListCronJobs(r.Context(), filter, page.store())
	if err != nil {
		return nil, err
	}
	out, err := s.cronJobDTOs(r.Context(), list)
	if err != nil {
		return nil, err
	}
	return envelope(r, page, count, out)
}

// listProjectCronJobs lists the live cron jobs of every spider of a project. Like estela, it
// takes page_size from 1 to 100 (default 10) and returns 400 {"error": "Invalid page size
// parameter."} for a bad page or page size. A page past the end is empty.
func (s *Server) listProjectCronJobs(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readCountedPage(r)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	list, count, err := s.store.ListCronJobs(r.Context(), store.CronJobFilter{ProjectID: p.PID}, page.store())
	if err != nil {
		return nil, err
	}
	out, err := s.cronJobDTOs(r.Context(), list)
	if err != nil {
		return nil, err
	}
	return cronJobListDTO{Results: out, Count: count}, nil
}

func readCountedPage(r *http.Request) (pageParams, error) {
	invalid := errMessage(http.StatusBadRequest, "Invalid page size parameter.")
	p := pageParams{page: 1, size: 10}
	q := r.URL.Query()
	if raw := q.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageNumber {
			return p, invalid
		}
		p.page = n
	}
	if raw := q.Get("page_size"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			return p, invalid
		}
		p.size = n
	}
	return p, nil
}

func (s *Server) getCronJob(_ http.ResponseWriter, r *http.Request) (any, error) {
	c, _, err := s.cronJobFor(r, actRead)
	if err != nil {
		return nil, err
	}
	return s.cronJobView(r.Context(), c)
}

func (s *Server) createCronJob(w http.ResponseWriter, r *http.Request) (any, error) {
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

	var req cronJobCreateRequest
	decodeFormLists(f, "cargs", "ctags", "cenv_vars")
	bind(f, &req)
	c := &store.CronJob{ProjectID: p.PID, SpiderID: sid, Schedule: strings.TrimSpace(req.Schedule), Status: store.CronActive,
		UniqueCollection: orDefault(req.UniqueCollection, false), DataStatus: req.DataStatus,
		ResourceTier: orDefault(req.ResourceTier, dispatch.DefaultTier), Args: argsOf(req.Cargs), Tags: tagsOf(req.Ctags)}
	if req.Schedule != "" {
		c.NextRun = nextRun(f, c.Schedule)
	}
	if c.DataStatus == "PENDING" {
		c.DataExpiryDays = expiryDays(f, req.DataExpiryDays, 1)
	}
	if c.EnvVars, err = s.resolveCronEnvVars(r.Context(), f, p.PID, nil, req.CenvVars); err != nil {
		return nil, err
	}
	if err := f.err(); err != nil {
		return nil, err
	}

	if err := s.store.CreateCronJob(r.Context(), c); err != nil {
		return nil, err
	}
	s.recordCronActivity(r.Context(), user, p.PID, c.CJID, fmt.Sprintf("scheduled a new %s for spider %s.", cronLabel(c.CJID), spider.Name))
	return created(cronJobToDTO(c, c.EnvVars)), nil
}

// nextRun parses a schedule and returns its first run from now, recording an invalid one in f.
func nextRun(f *fields, schedule string) *time.Time {
	sched, err := scheduler.Parse(schedule)
	if err != nil {
		f.fail("schedule", invalidSchedule)
		return nil
	}
	next := sched.Next(time.Now())
	return &next
}

// expiryDays returns the data expiry of a PENDING cron job: days when given, else def. Fewer
// than one day is recorded in f.
func expiryDays(f *fields, days *int, def int) *int {
	n := orDefault(days, def)
	if n < 1 {
		f.fail("data_expiry_days", "Data of a PENDING cron job must be kept at least 1 day.")
		return nil
	}
	return &n
}

func argsOf(list []argWrite) []store.Arg {
	out := make([]store.Arg, len(list))
	for i, a := range list {
		out[i] = store.Arg(a)
	}
	return out
}

func tagsOf(list []tagWrite) []string {
	out := make([]string, len(list))
	for i, t := range list {
		out[i] = t.Name
	}
	return out
}

// decodeFormLists replaces the named fields of a form body, which can only carry strings, by
// the JSON lists they encode. Fields that are not JSON lists are left for bind to reject.
func decodeFormLists(f *fields, names ...string) {
	for _, name := range names {
		raw, ok := f.values[name].(string)
		if !ok {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.UseNumber()
		var list []any
		if dec.Decode(&list) == nil && list != nil {
			f.values[name] = list
		}
	}
}

// resolveCronEnvVars turns the cenv_vars of a request into rows, recording bad entries in f.
// An entry with an evid copies that variable, which must belong to the same project or be one
// of current, the cron job's own variables. An entry with the value __MASKED__ and the name
// of a current variable keeps that variable's value. This is how clients pass on masked values
// they cannot see.
func (s *Server) resolveCronEnvVars(ctx context.Context, f *fields, pid string, current []store.EnvVar, vars []envVarWrite) ([]store.EnvVar, error) {
	out := []store.EnvVar{}
	for i, e := range vars {
		if e.EVID != nil {
			src, err := s.cronEnvSource(ctx, pid, current, *e.EVID)
			if errors.Is(err, store.ErrNotFound) {
				f.fail("cenv_vars", fmt.Sprintf("Item %d: environment variable %d does not exist in this project.", i, *e.EVID))
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, store.EnvVar{Name: src.Name, Value: src.Value, Masked: src.Masked})
			continue
		}
		if e.Value == "__MASKED__" {
			if old, ok := envVarNamed(current, e.Name); ok {
				out = append(out, store.EnvVar{Name: old.Name, Value: old.Value, Masked: e.Masked})
				continue
			}
		}
		if strings.TrimSpace(e.Name) == "" || e.Value == "" {
			f.fail("cenv_vars", fmt.Sprintf("Item %d: name and value are required unless evid names an existing variable.", i))
			continue
		}
		out = append(out, store.EnvVar{Name: e.Name, Value: e.Value, Masked: e.Masked})
	}
	return out, nil
}

func (s *Server) cronEnvSource(ctx context.Context, pid string, current []store.EnvVar, evid int64) (*store.EnvVar, error) {
	for i := range current {
		if current[i].EVID == evid {
			return &current[i], nil
		}
	}
	ev, err := s.store.EnvVarInProject(ctx, pid, evid)
	if errors.Is(err, store.ErrNotFound) {
		return s.store.CronEnvVarInProject(ctx, pid, evid)
	}
	return ev, err
}

func envVarNamed(vars []store.EnvVar, name string) (store.EnvVar, bool) {
	for _, v := range vars {
		if v.Name == name {
			return v, true
		}
	}
	return store.EnvVar{}, false
}

// updateCronJob applies the fields a PUT or PATCH names. estela-cli sends them form-encoded.
// A new schedule, or enabling a disabled cron job, sets its next run from now.
func (s *Server) updateCronJob(w http.ResponseWriter, r *http.Request) (any, error) {
	c, user, err := s.cronJobFor(r, actRun)
	if err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	var req cronJobUpdateRequest
	decodeFormLists(f, "cargs", "ctags", "cenv_vars")
	bind(f, &req)
	u, err := s.readCronJobUpdate(r.Context(), f, c, &req)
	if err != nil {
		return nil, err
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	if u.Status != nil && *u.Status == store.CronActive && c.SpiderDeleted {
		return nil, errMessage(http.StatusBadRequest, "Cannot enable: spider no longer exists in the project.")
	}

	if err := s.store.UpdateCronJob(r.Context(), c.CJID, u); err != nil {
		return nil, err
	}
	updated, err := s.store.CronJob(r.Context(), c.ProjectID, c.SpiderID, c.CJID)
	if err != nil {
		return nil, err
	}
	for _, description := range cronUpdateActivities(c, updated) {
		s.recordCronActivity(r.Context(), user, c.ProjectID, c.CJID, description)
	}
	return s.cronJobView(r.Context(), updated)
}

// cronUpdateActivities describes what an update changed, one activity per kind of change.
func cronUpdateActivities(before, after *store.CronJob) []string {
	label := cronLabel(after.CJID)
	var out []string
	if after.Schedule != before.Schedule {
		out = append(out, fmt.Sprintf("changed the schedule of %s.", label))
	}
	if after.Status != before.Status && after.Status == store.CronActive {
		out = append(out, fmt.Sprintf("enabled %s.", label))
	}
	if after.Status != before.Status && after.Status == store.CronDisabled {
		out = append(out, fmt.Sprintf("disabled %s.", label))
	}
	if after.DataStatus != before.DataStatus || orDefault(after.DataExpiryDays, 0) != orDefault(before.DataExpiryDays, 0) {
		keep := "persistent"
		if after.DataExpiryDays != nil {
			keep = fmt.Sprintf("kept for %d days", *after.DataExpiryDays)
		}
		out = append(out, fmt.Sprintf("changed the data persistence of %s to %s.", label, keep))
	}
	return out
}

// readCronJobUpdate turns a bound request into a store update, recording bad fields in f.
func (s *Server) readCronJobUpdate(ctx context.Context, f *fields, c *store.CronJob, req *cronJobUpdateRequest) (store.CronJobUpdate, error) {
	u := store.CronJobUpdate{Status: req.Status, UniqueCollection: req.UniqueCollection, ResourceTier: req.ResourceTier}
	schedule := c.Schedule
	if req.Schedule != nil {
		schedule = strings.TrimSpace(*req.Schedule)
		u.Schedule = &schedule
		u.NextRun = nextRun(f, schedule)
	}
	if req.Status != nil && *req.Status == store.CronActive && c.Status != store.CronActive && req.Schedule == nil {
		u.NextRun = nextRun(f, schedule)
	}
	readCronDataStatus(f, c, req, &u)
	if req.Cargs != nil {
		args := argsOf(req.Cargs)
		u.Args = &args
	}
	if req.Ctags != nil {
		tags := tagsOf(req.Ctags)
		u.Tags = &tags
	}
	if req.CenvVars == nil {
		return u, nil
	}
	current, err := s.store.EnvVarsOfCronJobs(ctx, []int64{c.CJID})
	if err != nil {
		return u, err
	}
	vars, err := s.resolveCronEnvVars(ctx, f, c.ProjectID, current[c.CJID], req.CenvVars)
	u.EnvVars = &vars
	return u, err
}

// readCronDataStatus sets the data persistence of an update. PERSISTENT clears the expiry;
// PENDING keeps data_expiry_days, or the current expiry, or 1 day. data_expiry_days alone
// applies only to a PENDING cron job.
func readCronDataStatus(f *fields, c *store.CronJob, req *cronJobUpdateRequest, u *store.CronJobUpdate) {
	switch {
	case req.DataStatus != nil && *req.DataStatus == "PERSISTENT":
		var none *int
		u.DataStatus, u.DataExpiryDays = req.DataStatus, &none
	case req.DataStatus != nil:
		days := expiryDays(f, req.DataExpiryDays, orDefault(c.DataExpiryDays, 1))
		u.DataStatus, u.DataExpiryDays = req.DataStatus, &days
	case req.DataExpiryDays != nil && c.DataStatus != "PENDING":
		f.fail("data_expiry_days", "The cron job keeps its data; send data_status=PENDING with data_expiry_days to make it expire.")
	case req.DataExpiryDays != nil:
		days := expiryDays(f, req.DataExpiryDays, 1)
		u.DataExpiryDays = &days
	}
}

// deleteCronJob soft-deletes a cron job; the jobs it created stay.
func (s *Server) deleteCronJob(_ http.ResponseWriter, r *http.Request) (any, error) {
	c, user, err := s.cronJobFor(r, actManage)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteCronJob(r.Context(), c.CJID); err != nil {
		return nil, err
	}
	s.recordCronActivity(r.Context(), user, c.ProjectID, c.CJID, fmt.Sprintf("deleted %s for spider %s.", cronLabel(c.CJID), c.SpiderName))
	return noContent, nil
}

// runCronJobOnce queues one job with the cron job's current values, whether the cron job is
// active or not. estela-web calls it with GET; either method needs a role that runs jobs.
func (s *Server) runCronJobOnce(_ http.ResponseWriter, r *http.Request) (any, error) {
	c, user, err := s.cronJobFor(r, actRun)
	if err != nil {
		return nil, err
	}
	if r.Method == http.MethodHead {
		// The router serves HEAD with every GET route, and HEAD must not start a job.
		return s.cronJobView(r.Context(), c)
	}
	if c.SpiderDeleted {
		return nil, errMessage(http.StatusBadRequest, "Cannot run: spider no longer exists in the project.")
	}

	jid, err := s.store.CreateCronJobRun(r.Context(), c.CJID)
	if err != nil {
		return nil, err
	}
	s.launch(r, jid)
	s.recordCronActivity(r.Context(), user, c.ProjectID, c.CJID, fmt.Sprintf("run Job-%d for spider %s.", jid, c.SpiderName))
	return s.cronJobView(r.Context(), c)
}
