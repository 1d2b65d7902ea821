package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-pg/pg/v10"
)

// measureDispatch creates jobs through the API from several clients at once and times until
// the dispatch worker has launched all of them on its noop engine. A job counts as launched
// when the worker logs "job launched", after the engine's CreateJob returned, and once no
// job of the phase is IN_QUEUE.
func measureDispatch(ctx context.Context, p *platform, res *Results) error {
	sizes := p.opts.Sizes
	sid := p.spiders[mainSpider]
	first, err := p.maxJobID(ctx)
	if err != nil {
		return err
	}
	launched, err := p.dispatchWorker.countLog("job launched")
	if err != nil {
		return err
	}

	start := time.Now()
	if err := createJobs(ctx, p, sid, sizes.DispatchJobs, sizes.DispatchClients); err != nil {
		return err
	}
	created := time.Since(start)
	err = poll(ctx, sizes.PhaseTimeout, 10*time.Millisecond, "every job to be launched", func() (bool, error) {
		if n, err := launched.lines(); err != nil || n < sizes.DispatchJobs {
			return false, err
		}
		queued, total, err := countQueued(ctx, p.db, sid, first)
		return err == nil && total == sizes.DispatchJobs && queued == 0, err
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := checkNoneFailed(ctx, p.db, sid, first); err != nil {
		return err
	}

	res.DispatchJobsPerSecond = ptr(float64(sizes.DispatchJobs) / elapsed.Seconds())
	res.Limits.CreateJobsPerSecond = float64(sizes.DispatchJobs) / created.Seconds()
	p.dispatchWorker.stop()
	return nil
}

// createJobs sends n job creations from clients goroutines.
func createJobs(ctx context.Context, p *platform, sid int64, n, clients int) error {
	path := fmt.Sprintf("%s/spiders/%d/jobs", p.projectPath(), sid)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && errs[c] == nil {
				errs[c] = p.client.call(ctx, http.MethodPost, path, p.adminKey, []byte("{}"), "application/json", http.StatusCreated, nil)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		// Every client failed with the same error, so return it once.
		return err
	}
	return errors.Join(errs...)
}

func countQueued(ctx context.Context, db *pg.DB, sid, after int64) (queued, total int, err error) {
	_, err = db.QueryOneContext(ctx, pg.Scan(&queued, &total), `SELECT count(*) FILTER (WHERE status = 'IN_QUEUE'), count(*)
		FROM jobs WHERE spider_id = ? AND jid > ?`, sid, after)
	return queued, total, err
}

// checkNoneFailed returns an error when a job of the phase ended in ERROR, which would also
// have taken it out of IN_QUEUE.
func checkNoneFailed(ctx context.Context, db *pg.DB, sid, after int64) error {
	var failed int
	var reason string
	_, err := db.QueryOneContext(ctx, pg.Scan(&failed, &reason), `SELECT count(*), coalesce(min(error_reason), '')
		FROM jobs WHERE spider_id = ? AND jid > ? AND status = 'ERROR'`, sid, after)
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d jobs ended in ERROR instead of being launched, for example: %s", failed, reason)
	}
	return err
}
