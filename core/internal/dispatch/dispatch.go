// Package dispatch is the worker's side of jobs and deploys: it launches queued jobs on the
// engine, prepares uploaded deploys, stops jobs, and reconciles job statuses with the engine.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Labels put on every engine job, so that ListJobs finds the platform's jobs in one call.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelProject   = "estela/project"
	LabelSpider    = "estela/spider"
	LabelJob       = "estela/job"
	managedBy      = "estela-go"
)

// Enqueuer is the part of the queue the service needs.
type Enqueuer interface {
	// NotifyQueued notifies the workers that jobs wait in Postgres to be launched.
	NotifyQueued() error
	EnqueueBuild(did int64) error
}

// Settings tune the service.
type Settings struct {
	// APIHost is the base URL jobs use to call the API.
	APIHost string
	// RedisURL is given to jobs for their live stats.
	RedisURL string
	// StatsInterval is how often jobs write their live stats.
	StatsInterval time.Duration
	// LostJobGrace is how long a job may be missing from the engine, or finished there
	// without reporting, before the reconcile acts.
	LostJobGrace time.Duration
	// MaxDispatchAttempts bounds how often a job is launched again after failures.
	MaxDispatchAttempts int
	// Launchers is how many jobs of a claimed batch are launched at once; 16 when zero.
	Launchers int
	// StopGrace is how long a stopped job may take to shut down before it is killed.
	StopGrace time.Duration
	// Images names where image builds push; engines that run archives ignore it.
	Images ImageSettings
	// BuildTimeout is how long an image build may take to report before its deploy fails.
	BuildTimeout time.Duration
}

// Service carries out dispatch, builds, stops and reconciles.
type Service struct {
	store    *store.Store
	engine   engine.Engine
	creds    credentials.Provider
	queue    Enqueuer
	stats    *livestats.Reader
	settings Settings
	images   ImageSettings
	log      hclog.Logger
	// fullAt is the time of the engine's last "at capacity" error, in Unix nanoseconds, and 0
	// once the engine created a job again.
	fullAt atomic.Int64
	// fullLoggedAt is when "engine at capacity" was last logged, in Unix nanoseconds.
	fullLoggedAt atomic.Int64
}

// New returns a service.
func New(st *store.Store, eng engine.Engine, creds credentials.Provider, q Enqueuer, stats *livestats.Reader, settings Settings, log hclog.Logger) *Service {
	if settings.StatsInterval == 0 {
		settings.StatsInterval = 5 * time.Second
	}
	if settings.StopGrace == 0 {
		settings.StopGrace = 10 * time.Second
	}
	if settings.BuildTimeout == 0 {
		settings.BuildTimeout = time.Hour
	}
	if settings.Launchers <= 0 {
		settings.Launchers = 16
	}
	return &Service{store: st, engine: eng, creds: creds, queue: q, stats: stats, settings: settings, images: settings.Images, log: log.Named("dispatch")}
}

// Sizes and waits of launches.
const (
	// claimBatch is how many queued jobs one claim takes from Postgres.
	claimBatch = 100
	// unavailableWait is how long jobs wait in the queue after the engine was unavailable.
	unavailableWait = 2 * time.Second
	// retryStep is the back-off per failed attempt before a job is launched again.
	retryStep = 2 * time.Second
	// capacityWait is how long DispatchQueued claims nothing after the engine was at capacity.
	capacityWait = time.Second
	// capacityLogGap is the least time between two "engine at capacity" log lines: under a cap,
	// the engine rejects a launch before nearly every job it starts.
	capacityLogGap = time.Minute
)

// DispatchQueued launches the queued jobs that are due, claimed from Postgres in batches,
// until a claim finds less than a full batch. Jobs queued after that claim are left to the
// next call, which their notification or the next tick brings. It stops early when the engine
// is unavailable (with an error), when the engine is at capacity (without one), or when ctx
// ends: the jobs not launched go back to the queue without counting an attempt. Several
// workers may call it at once, and each job is claimed by one of them. It returns how many
// jobs it claimed, launched or not.
func (s *Service) DispatchQueued(ctx context.Context) (int, error) {
	if at := s.fullAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < capacityWait {
		return 0, nil
	}
	claimed := 0
	for ctx.Err() == nil {
		launches, err := s.store.ClaimQueuedJobs(ctx, claimBatch)
		if err != nil {
			return claimed, err
		}
		claimed += len(launches)
		err = s.launchAll(ctx, launches)
		if ctx.Err() != nil {
			return claimed, ctx.Err()
		}
		if errors.Is(err, errdefs.ErrAtCapacity) {
			return claimed, nil
		}
		if err != nil || len(launches) < claimBatch {
			return claimed, err
		}
	}
	return claimed, ctx.Err()
}

// launchAll launches claimed jobs, s.settings.Launchers at a time. After the engine reports
// itself unavailable or at capacity, the jobs not yet launched go back to the queue untried,
// and launchAll returns that error.
//
// While the engine was at capacity at the last launch, the jobs are launched one at a time.
// Concurrent launches would race for each slot that frees, and jobs would start out of the
// order they were queued in.
func (s *Service) launchAll(ctx context.Context, launches []*store.Launch) error {
	if len(launches) == 0 {
		return nil
	}
	launchers := s.settings.Launchers
	if s.fullAt.Load() != 0 {
		launchers = 1
	}
	var (
		mu          sync.Mutex
		unavailable error
		full        error
		untried     []int64
	)
	// launchOne launches l unless the engine was found unavailable or at capacity, or the
	// worker is shutting down, and then sets l aside.
	launchOne := func(l *store.Launch) {
		mu.Lock()
		skip := unavailable != nil || full != nil || ctx.Err() != nil
		if skip {
			untried = append(untried, l.Job.JID)
		}
		mu.Unlock()
		if skip {
			return
		}

		err := s.launch(ctx, l)
		switch {
		case ctx.Err() != nil:
			// The launch was interrupted by the shutdown, and the job went back to the queue.
		case errors.Is(err, errdefs.ErrUnavailable):
			mu.Lock()
			unavailable = err
			mu.Unlock()
		case errors.Is(err, errdefs.ErrAtCapacity):
			mu.Lock()
			full = err
			mu.Unlock()
		case err != nil:
			s.log.Error("launch failed", "jid", l.Job.JID, "error", err)
		}
	}

	next := make(chan *store.Launch)
	var wg sync.WaitGroup
	for range min(launchers, len(launches)) {
		wg.Go(func() {
			for l := range next {
				launchOne(l)
			}
		})
	}
	for _, l := range launches {
		next <- l
	}
	close(next)
	wg.Wait()

	// Jobs set aside because the worker is shutting down may be claimed at once by another.
	wait := unavailableWait
	if unavailable == nil {
		wait = 0
	}
	writeCtx, cancel := storeContext(ctx)
	defer cancel()
	if _, err := s.store.ReturnJobsToQueue(writeCtx, untried, wait, true); err != nil {
		return err
	}
	if unavailable != nil {
		return unavailable
	}
	return full
}

// storeContext returns a context for the store writes that follow a launch. They must happen
// even when the worker is shutting down, or a claimed job would stay WAITING until the
// reconcile finds it missing from the engine, lost_job_grace_seconds later.
func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// DispatchJob claims one queued job and launches it, for a job that is to start at once. A
// job that is no longer queued is left alone. It returns the launch's error, if any, after the
// job went back to the queue or ended in ERROR.
func (s *Service) DispatchJob(ctx context.Context, jid int64) error {
	launch, err := s.store.ClaimJobForLaunch(ctx, jid)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.launch(ctx, launch)
}

// launch creates a claimed job on the engine. A job that cannot run (no deploy contains its
// spider, or the engine rejects it) ends in ERROR, and launch returns nil. After any other
// failure the job goes back to the queue, or ends in ERROR once it used all its attempts, and
// launch returns the failure.
func (s *Service) launch(ctx context.Context, launch *store.Launch) error {
	job := launch.Job
	if launch.Artifact == "" {
		reason := fmt.Sprintf("no successful deploy contains spider %q; deploy the project again", job.SpiderName)
		return s.fail(ctx, job, lifecycle.Waiting, reason)
	}

	spec, err := s.jobSpec(ctx, launch)
	if err != nil {
		return s.requeue(ctx, job, err)
	}
	resp, err := s.engine.CreateJob(ctx, &engine.CreateJobRequest{Spec: spec})
	if err != nil && ctx.Err() != nil {
		// The worker is shutting down. The job goes back to the queue without using an attempt,
		// and an engine that created it anyway finds it by name at the next launch.
		err = errdefs.Unavailable("launch interrupted by the worker's shutdown: %v", err)
	}
	if errors.Is(err, errdefs.ErrInvalid) {
		return s.fail(ctx, job, lifecycle.Waiting, "the engine rejected the job: "+err.Error())
	}
	if err != nil {
		return s.requeue(ctx, job, err)
	}
	if s.fullAt.Swap(0) != 0 {
		s.log.Debug("engine takes jobs again")
	}
	s.log.Debug("job launched", "jid", job.JID, "name", spec.Name, "engine_state", resp.Job.State, "created", resp.Created)
	return nil
}

// requeue puts a claimed job back in the queue after a failed launch, or ends it in ERROR
// when it used all its attempts. An engine that is unavailable (its plugin down or restarting,
// its cluster unreachable) or at capacity does not use up attempts: the job waits for it.
// requeue returns cause, or nil when the job ended in ERROR.
func (s *Service) requeue(ctx context.Context, job *store.Job, cause error) error {
	ctx, cancel := storeContext(ctx)
	defer cancel()
	if errors.Is(cause, errdefs.ErrAtCapacity) {
		if _, err := s.store.ReturnJobsToQueue(ctx, []int64{job.JID}, 0, true); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		s.fullAt.Store(now)
		if last := s.fullLoggedAt.Load(); now-last >= int64(capacityLogGap) && s.fullLoggedAt.CompareAndSwap(last, now) {
			s.log.Info("engine at capacity: queued jobs wait until running ones end, logged at most once a minute", "reason", cause.Error())
		}
		return fmt.Errorf("launch job %d, engine at capacity: %w", job.JID, cause)
	}
	if errors.Is(cause, errdefs.ErrUnavailable) {
		if _, err := s.store.ReturnJobsToQueue(ctx, []int64{job.JID}, unavailableWait, true); err != nil {
			return err
		}
		return fmt.Errorf("launch job %d, engine unavailable: %w", job.JID, cause)
	}
	if job.DispatchAttempts >= s.settings.MaxDispatchAttempts {
		reason := fmt.Sprintf("launching the job failed %d times; last error: %v", job.DispatchAttempts, cause)
		return s.fail(ctx, job, lifecycle.Waiting, reason)
	}
	wait := time.Duration(job.DispatchAttempts) * retryStep
	if _, err := s.store.ReturnJobsToQueue(ctx, []int64{job.JID}, wait, false); err != nil {
		return err
	}
	return fmt.Errorf("launch job %d, attempt %d of %d, retrying in %s: %w",
		job.JID, job.DispatchAttempts, s.settings.MaxDispatchAttempts, wait, cause)
}

// fail moves a job to ERROR with a reason, if it still has status from.
func (s *Service) fail(ctx context.Context, job *store.Job, from, reason string) error {
	ctx, cancel := storeContext(ctx)
	defer cancel()
	status := lifecycle.Error
	_, err := s.store.UpdateJob(ctx, job.JID, store.JobUpdate{FromStatus: from, Status: &status, ErrorReason: &reason})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Warn("job failed", "jid", job.JID, "reason", reason)
	return s.store.DeleteJobTokens(ctx, job.JID)
}

func (s *Service) jobSpec(ctx context.Context, launch *store.Launch) (engine.JobSpec, error) {
	job := launch.Job
	userEnv := make(map[string]string, len(launch.EnvVars))
	for _, v := range launch.EnvVars {
		userEnv[v.Name] = v.Value
	}
	if err := s.addProxy(ctx, userEnv); err != nil {
		return engine.JobSpec{}, err
	}
	args := make(map[string]string, len(job.Args))
	for _, a := range job.Args {
		args[a.Name] = a.Value
	}
	collection, unique := job.Key(), "False"
	if launch.SharedCollection != "" {
		collection, unique = launch.SharedCollection, "True"
	}

	info, err := json.Marshal(map[string]any{
		"spider":     job.SpiderName,
		"api_host":   s.settings.APIHost,
		"auth_token": launch.Token,
		"key":        job.Key(),
		"collection": collection,
		"args":       args,
		"env_vars":   userEnv,
		"unique":     unique,
	})
	if err != nil {
		return engine.JobSpec{}, fmt.Errorf("encode JOB_INFO: %w", err)
	}

	tier, ok := Tiers[job.ResourceTier]
	if !ok {
		tier = Tiers[DefaultTier]
	}

	env := make(map[string]string, len(userEnv)+5)
	for k, v := range userEnv {
		env[k] = v
	}
	env["REDIS_URL"] = s.settings.RedisURL
	env["REDIS_STATS_KEY"] = s.stats.Key(job.Key())
	env["REDIS_STATS_INTERVAL"] = strconv.FormatFloat(s.settings.StatsInterval.Seconds(), 'f', 1, 64)
	env["MEMUSAGE_LIMIT_MB"] = strconv.Itoa(tier.MemUsageLimitMB)
	env["JOB_INFO"] = string(info)
	return engine.JobSpec{
		Name:        job.Name(),
		ArtifactRef: launch.Artifact,
		Command:     []string{"estela-crawl"},
		Env:         env,
		Labels: map[string]string{
			LabelManagedBy: managedBy,
			LabelProject:   job.ProjectID,
			LabelSpider:    strconv.FormatInt(job.SpiderID, 10),
			LabelJob:       strconv.FormatInt(job.JID, 10),
		},
		Resources: tier.Resources,
	}, nil
}

// BuildDeploy prepares an uploaded deploy: the archive goes from the credentials plugin to the
// engine, which unpacks or builds it and lists its spiders. A deploy that is no longer
// BUILDING is left alone.
func (s *Service) BuildDeploy(ctx context.Context, did int64) error {
	d, err := s.store.DeployByID(ctx, did)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.Status != store.DeployBuilding) {
		return nil
	}
	if err != nil {
		return err
	}
	attempts, err := s.store.CountDeployAttempt(ctx, did)
	if err != nil {
		return err
	}
	if s.buildsImages() {
		return s.buildImage(ctx, d, attempts)
	}
	resp, err := s.prepare(ctx, d)
	switch {
	case errors.Is(err, errdefs.ErrInvalid):
		return s.failDeploy(ctx, did, err.Error())
	case err != nil && attempts >= 3:
		return s.failDeploy(ctx, did, fmt.Sprintf("preparing the deploy failed %d times; last error: %v", attempts, err))
	case err != nil:
		return fmt.Errorf("prepare deploy %d: %w", did, err)
	case len(resp.Spiders) == 0:
		return s.failDeploy(ctx, did, "the project has no spiders")
	}
	if err := s.store.SucceedDeploy(ctx, did, resp.ArtifactRef, resp.Spiders); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	s.recordDeploy(ctx, d)
	s.log.Info("deploy ready", "did", did, "project", d.ProjectID, "spiders", resp.Spiders)
	return nil
}

func (s *Service) prepare(ctx context.Context, d *store.Deploy) (*engine.PrepareArtifactResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	go func() {
		err := s.creds.GetProject(ctx, &credentials.GetProjectRequest{ProjectID: d.ProjectID, DeployID: d.DID}, pw)
		pw.CloseWithError(err)
	}()
	resp, err := s.engine.PrepareArtifact(ctx, &engine.PrepareArtifactRequest{ProjectID: d.ProjectID, DeployID: d.DID, Archive: pr})
	pr.CloseWithError(io.ErrClosedPipe)
	return resp, err
}

func (s *Service) failDeploy(ctx context.Context, did int64, reason string) error {
	s.log.Warn("deploy failed", "did", did, "reason", reason)
	if err := s.store.FailDeploy(ctx, did, reason); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	if d, err := s.store.DeployByID(ctx, did); err == nil {
		s.recordDeploy(ctx, d)
	}
	return nil
}

// recordDeploy adds estela's "made a new Deploy" activity, attributed to the deploy's user.
// A failed activity is logged and does not fail the deploy.
func (s *Service) recordDeploy(ctx context.Context, d *store.Deploy) {
	var user int64
	if d.UserID != nil {
		user = *d.UserID
	}
	if _, err := s.store.RecordActivity(ctx, user, d.ProjectID, fmt.Sprintf("made a new Deploy #%d.", d.DID)); err != nil {
		s.log.Warn("record deploy activity", "did", d.DID, "error", err)
	}
}

// addProxy puts the current credentials of the proxy provider a job names in ESTELA_PROXY_NAME
// into its environment, with ESTELA_PROXIES_ENABLED, as estela's dispatch does. An unknown
// provider name leaves the environment as it is.
func (s *Service) addProxy(ctx context.Context, env map[string]string) error {
	name := env["ESTELA_PROXY_NAME"]
	if name == "" {
		return nil
	}
	p, err := s.store.ProxyProviderByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	env["ESTELA_PROXY_USER"], env["ESTELA_PROXY_PASS"] = p.Username, p.Password
	env["ESTELA_PROXY_URL"], env["ESTELA_PROXY_PORT"] = p.Host, p.Port
	env["ESTELA_PROXY_NAME"], env["ESTELA_PROXIES_ENABLED"] = p.Name, "True"
	return nil
}
