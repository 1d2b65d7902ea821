package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// sweepAge is how long a deploy must have waited before the reconcile enqueues it again.
const sweepAge = 5 * time.Second

// Reconcile repairs what the queue or the engine lost. It enqueues again the deploys that wait
// in Postgres (queued jobs need no sweep: workers claim them from Postgres), then compares every active job with the engine's list, fetched in one
// call: jobs that died without reporting end in ERROR, dispatched jobs the engine never got are
// launched again, and engine jobs of stopped jobs are stopped. Running it twice at once is safe
// because every status change is conditional.
func (s *Service) Reconcile(ctx context.Context) error {
	if err := s.sweep(ctx); err != nil {
		return err
	}
	active, err := s.store.ActiveJobs(ctx)
	if err != nil {
		return err
	}
	list, err := s.engine.ListJobs(ctx, &engine.ListJobsRequest{Labels: map[string]string{LabelManagedBy: managedBy}})
	if err != nil {
		return fmt.Errorf("list engine jobs: %w", err)
	}
	onEngine := make(map[string]engine.JobStatus, len(list.Jobs))
	for _, j := range list.Jobs {
		onEngine[j.Name] = j
	}
	activeNames := make(map[string]bool, len(active))
	for i := range active {
		job := &active[i]
		activeNames[job.Name()] = true
		status, found := onEngine[job.Name()]
		if err := s.reconcileJob(ctx, job, status, found); err != nil {
			s.log.Error("reconcile job", "jid", job.JID, "error", err)
		}
	}
	return s.stopOrphans(ctx, list.Jobs, activeNames)
}

func (s *Service) sweep(ctx context.Context) error {
	building, err := s.store.BuildingDeployIDs(ctx, time.Now().Add(-sweepAge))
	if err != nil {
		return err
	}
	stale, err := s.store.StaleImageBuilds(ctx, time.Now().Add(-s.settings.BuildTimeout))
	if err != nil {
		return err
	}
	for _, did := range stale {
		reason := fmt.Sprintf("the image build did not report its result within %s", s.settings.BuildTimeout)
		if err := s.failDeploy(ctx, did, reason); err != nil {
			return err
		}
	}
	for _, did := range building {
		if err := s.queue.EnqueueBuild(did); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) reconcileJob(ctx context.Context, job *store.Job, status engine.JobStatus, found bool) error {
	grace := s.settings.LostJobGrace
	switch {
	case !found && job.Status == lifecycle.Waiting:
		if job.DispatchedAt != nil && time.Since(*job.DispatchedAt) < grace {
			return nil
		}
		s.log.Warn("dispatched job missing from the engine, launching it again", "jid", job.JID)
		return s.requeueLost(ctx, job)
	case !found:
		return s.markLost(ctx, job, "the engine has no record of the job process; it was lost, for example when the engine restarted")
	case status.State == engine.JobFailed:
		return s.markLost(ctx, job, "the job process failed: "+status.Reason)
	case status.State == engine.JobStopped:
		return s.markLost(ctx, job, "the job process was stopped outside the platform")
	case status.State == engine.JobSucceeded && time.Since(status.FinishedAt) >= grace:
		return s.markLost(ctx, job, "the job process exited without reporting its result")
	}
	return nil
}

func (s *Service) requeueLost(ctx context.Context, job *store.Job) error {
	if job.DispatchAttempts >= s.settings.MaxDispatchAttempts {
		return s.fail(ctx, job, lifecycle.Waiting, fmt.Sprintf("the engine lost the job %d times", job.DispatchAttempts))
	}
	n, err := s.store.ReturnJobsToQueue(ctx, []int64{job.JID}, 0, false)
	if err != nil || n == 0 {
		return err
	}
	return s.queue.NotifyQueued()
}

// markLost ends an active job in ERROR, keeping the counters its live stats reached.
func (s *Service) markLost(ctx context.Context, job *store.Job, reason string) error {
	update := store.JobUpdate{FromStatus: job.Status}
	status := lifecycle.Error
	update.Status, update.ErrorReason = &status, &reason
	s.flushStats(ctx, job, &update)
	_, err := s.store.UpdateJob(ctx, job.JID, update)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Warn("job ended by reconcile", "jid", job.JID, "reason", reason)
	return s.store.DeleteJobTokens(ctx, job.JID)
}

// flushStats copies a job's live stats into update and into the stored stats, then removes
// them from Redis. Failures are logged: losing live stats must not block a status change.
func (s *Service) flushStats(ctx context.Context, job *store.Job, update *store.JobUpdate) {
	stats, err := s.stats.Read(ctx, job.Key())
	if err != nil || len(stats) == 0 {
		if err != nil {
			s.log.Warn("read live stats", "jid", job.JID, "error", err)
		}
		return
	}
	c := livestats.CountersOf(stats)
	update.ItemCount, update.RequestCount = &c.ItemCount, &c.RequestCount
	update.TotalResponseBytes, update.LifespanMicros = &c.TotalResponseBytes, &c.LifespanMicros
	if raw, err := json.Marshal(livestats.Decode(stats)); err == nil {
		if err := s.store.SaveJobStats(ctx, job.JID, raw); err != nil {
			s.log.Warn("save live stats", "jid", job.JID, "error", err)
		}
	}
	if err := s.stats.Delete(ctx, job.Key()); err != nil {
		s.log.Warn("delete live stats", "jid", job.JID, "error", err)
	}
}

// engineJobRetention is how long the engine keeps a finished job, with its output, after the
// job ended in Postgres too.
const engineJobRetention = time.Hour

// stoppedStatsWindow is how long after its process ended a stopped job's live stats are saved
// again by the reconcile.
const stoppedStatsWindow = 5 * time.Minute

// stopOrphans stops engine jobs that still run although their job has ended in Postgres, for
// example when a stop request reached the database but not the engine, and deletes finished
// engine jobs after engineJobRetention so that the engine's list stays short. The statuses of
// all these jobs are read in one query.
//
// A stopped job keeps sending data and live stats during its stop's grace period. When its
// process was killed before its last report, the live stats it wrote last are saved as its
// counters and stats, once, in place of those saved when the stop began. Its item count is
// then at least the number of items it stored.
func (s *Service) stopOrphans(ctx context.Context, jobs []engine.JobStatus, active map[string]bool) error {
	byJID := map[int64]engine.JobStatus{}
	for _, j := range jobs {
		if active[j.Name] {
			continue
		}
		if jid, err := strconv.ParseInt(j.Labels[LabelJob], 10, 64); err == nil {
			byJID[jid] = j
		}
	}
	if len(byJID) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(byJID))
	for jid := range byJID {
		ids = append(ids, jid)
	}
	statuses, err := s.store.JobStatuses(ctx, ids)
	if err != nil {
		return err
	}
	for jid, j := range byJID {
		status, known := statuses[jid]
		if known && !lifecycle.Terminal(status.Status) {
			continue
		}
		switch {
		case !j.State.Final():
			if known && time.Since(status.Changed) < 2*s.settings.StopGrace {
				// The job ended in Postgres a moment ago. Its process is still exiting after its
				// last report, or flushing its data within a stop request's grace period, and a
				// stop now would cut it short.
				continue
			}
			s.log.Info("stopping engine job of an ended job", "name", j.Name)
			s.stopOnEngine(ctx, j.Name)
		case !j.FinishedAt.IsZero() && time.Since(j.FinishedAt) > engineJobRetention:
			s.deleteOnEngine(ctx, j.Name)
		case known && status.Status == lifecycle.Stopped && time.Since(j.FinishedAt) < stoppedStatsWindow:
			s.saveStoppedStats(ctx, jid, j)
		}
	}
	return nil
}

// saveStoppedStats saves the live stats that a stopped job wrote after its stop began, if any
// are left in Redis. The job's last report deletes them, as does this call. The stats are
// written every few seconds, so the items the job stored after the last write count too.
func (s *Service) saveStoppedStats(ctx context.Context, jid int64, j engine.JobStatus) {
	sid, err := strconv.ParseInt(j.Labels[LabelSpider], 10, 64)
	if err != nil {
		return
	}
	job := &store.Job{JID: jid, SpiderID: sid, ProjectID: j.Labels[LabelProject]}
	update := store.JobUpdate{}
	s.flushStats(ctx, job, &update)
	if update.ItemCount == nil {
		return
	}
	stored, err := s.store.StoredRecords(ctx, jid, store.DataItems)
	if err != nil {
		s.log.Warn("count stored items of stopped job", "jid", jid, "error", err)
	} else if stored > *update.ItemCount {
		update.ItemCount = &stored
	}
	if _, err := s.store.UpdateJob(ctx, jid, update); err != nil {
		s.log.Warn("save counters of stopped job", "jid", jid, "error", err)
		return
	}
	s.log.Info("saved the live stats a stopped job wrote after its stop", "jid", jid, "items", *update.ItemCount)
}

func (s *Service) deleteOnEngine(ctx context.Context, name string) {
	_, err := s.engine.DeleteJob(ctx, &engine.DeleteJobRequest{Name: name})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		s.log.Warn("delete finished engine job", "name", name, "error", err)
	}
}

// StopJob is called after a user moved a job to STOPPED: it flushes the live stats of a running
// job and stops its process on the engine.
func (s *Service) StopJob(ctx context.Context, job *store.Job, previous string) {
	if previous == lifecycle.Running {
		update := store.JobUpdate{}
		s.flushStats(ctx, job, &update)
		if update.ItemCount != nil {
			if _, err := s.store.UpdateJob(ctx, job.JID, update); err != nil {
				s.log.Warn("save counters of stopped job", "jid", job.JID, "error", err)
			}
		}
	}
	// The job token stays usable for store.JobTokenGrace, so the job can send the data it
	// buffered while it shuts down.
	if previous != lifecycle.InQueue {
		s.stopOnEngine(ctx, job.Name())
	}
}

func (s *Service) stopOnEngine(ctx context.Context, name string) {
	_, err := s.engine.StopJob(ctx, &engine.StopJobRequest{Name: name, Grace: s.settings.StopGrace})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		// The next reconcile stops it.
		s.log.Warn("stop engine job", "name", name, "error", err)
	}
}
