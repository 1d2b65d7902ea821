package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-pg/pg/v10"

	"github.com/estela-go/estela-go/core/internal/store"
)

// listPageSize is the page_size of every job list request.
const listPageSize = 50

// shallowPages is how many first pages count as shallow: where a person browsing looks.
const shallowPages = 10

// warmupPerClient times the number of clients is how many untimed requests the clients make,
// between them, before the timed ones. The first requests open the clients' connections and
// the API's database connections, which prepare their statements. With 2,000 timed requests,
// the default once, the p99 was the 20 slowest, and in a run without the warm-up 16 of them
// were among the first 40 requests.
const warmupPerClient = 5

// listRequest is one job list request of the load.
type listRequest struct {
	page int
	deep bool
}

// measureJobList stores many jobs in one spider, then requests pages of its job list from
// several clients at once, half of them among the first pages and half anywhere. The same
// pages are then read with the handler's store calls in-process, without HTTP and
// authentication, and GET / is requested the same number of times, as the limits.
func measureJobList(ctx context.Context, p *platform, res *Results) error {
	sizes := p.opts.Sizes
	sid := p.spiders[listSpider]
	if err := p.insertListJobs(ctx, sid, sizes.JobListJobs); err != nil {
		return err
	}
	if err := p.checkListCount(ctx, sid, sizes.JobListJobs); err != nil {
		return err
	}
	if err := p.waitForAutovacuum(ctx, sizes.PhaseTimeout); err != nil {
		return err
	}
	requests := listRequests(sizes.JobListRequests, sizes.JobListJobs, 1)
	warmup := listRequests(warmupPerClient*sizes.JobListClients, sizes.JobListJobs, 2)
	load := func(get func(page int) error) (*listLoad, error) {
		return runListLoad(ctx, warmup, requests, sizes.JobListClients, sizes.PhaseTimeout, get)
	}

	path := fmt.Sprintf("%s/spiders/%d/jobs?page_size=%d&page=", p.projectPath(), sid, listPageSize)
	api, err := load(func(page int) error {
		return p.getPage(ctx, path+fmt.Sprint(page))
	})
	if err != nil {
		return err
	}
	storeOnly, err := load(func(page int) error {
		return p.readPageFromStore(ctx, sid, page)
	})
	if err != nil {
		return err
	}

	health, err := load(func(int) error {
		return p.getPage(ctx, "/")
	})
	if err != nil {
		return err
	}

	for name, load := range map[string]*listLoad{"api": api, "store": storeOnly, "health": health} {
		if load.done < len(requests) {
			p.log.Warn("phase time limit reached", "phase", PhaseJobList, "run", name, "requests", load.done, "requested", len(requests))
		}
	}

	res.JobListP99Millis = ptr(millis(api.p99(nil)))
	res.JobListRequestsPerSecond = ptr(api.rate())
	res.Limits.WarmupMaxMillis = millis(api.warmupMax)
	res.Limits.ShallowP99Millis = millis(api.p99(func(r listRequest) bool { return !r.deep }))
	res.Limits.DeepP99Millis = millis(api.p99(func(r listRequest) bool { return r.deep }))
	res.Limits.StoreListP99Millis = millis(storeOnly.p99(nil))
	res.Limits.StoreListRequestsPerSecond = storeOnly.rate()
	res.Limits.HealthP99Millis = millis(health.p99(nil))
	res.Limits.HealthRequestsPerSecond = health.rate()
	return nil
}

// insertListJobs inserts n COMPLETED jobs into the spider with one statement, then vacuums
// and analyzes the table, as autovacuum would after such an insert.
func (p *platform) insertListJobs(ctx context.Context, sid int64, n int) error {
	_, err := p.db.ExecContext(ctx, `INSERT INTO jobs (project_id, spider_id, status)
		SELECT ?, ?, 'COMPLETED' FROM generate_series(1, ?)`, p.project, sid, n)
	if err != nil {
		return fmt.Errorf("insert list jobs: %w", err)
	}
	if _, err := p.db.ExecContext(ctx, "VACUUM ANALYZE jobs"); err != nil {
		return fmt.Errorf("vacuum jobs: %w", err)
	}
	return nil
}

// waitForAutovacuum waits until no autovacuum worker runs in the benchmark's database, or
// timeout passes. The export phase's million rows leave job_data to autovacuum, whose run
// overlapped the job list's requests in full runs and took CPU time from them. Autovacuum can
// slow rounds of the export phase too, since that phase starts it. The export's ratios are
// well above their targets, so that phase does not wait.
func (p *platform) waitForAutovacuum(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	start := time.Now()
	logged := false
	for {
		var tables []string
		_, err := p.db.QueryContext(ctx, pg.Scan(pg.Array(&tables)), `SELECT coalesce(array_agg(query), '{}')
			FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND datname = current_database()`)
		if err != nil {
			return fmt.Errorf("read autovacuum workers: %w", err)
		}
		switch {
		case len(tables) == 0 && logged:
			p.log.Info("autovacuum finished", "waited", time.Since(start).Round(100*time.Millisecond))
			return nil
		case len(tables) == 0:
			p.log.Info("no autovacuum worker running before the requests")
			return nil
		case time.Now().After(deadline):
			p.log.Warn("autovacuum still running; measuring anyway", "waited", timeout, "workers", tables)
			return nil
		case !logged:
			p.log.Info("waiting for autovacuum to finish before the requests", "workers", tables)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkListCount reads the first page once and checks that the API counts every job.
func (p *platform) checkListCount(ctx context.Context, sid int64, n int) error {
	var page struct {
		Count   int   `json:"count"`
		Results []any `json:"results"`
	}
	path := fmt.Sprintf("%s/spiders/%d/jobs?page_size=%d", p.projectPath(), sid, listPageSize)
	if err := p.client.call(ctx, http.MethodGet, path, p.adminKey, nil, "", http.StatusOK, &page); err != nil {
		return err
	}
	if page.Count != n || len(page.Results) != min(n, listPageSize) {
		return fmt.Errorf("the job list has count %d and %d results, expected %d and %d", page.Count, len(page.Results), n, min(n, listPageSize))
	}
	return nil
}

// listRequests returns n requests: even ones for pages 1 to shallowPages, odd ones for any page.
// The seed is fixed, so every run requests the same pages.
func listRequests(n, jobs int, seed uint64) []listRequest {
	pages := (jobs + listPageSize - 1) / listPageSize
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]listRequest, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = listRequest{page: 1 + rng.IntN(min(shallowPages, pages))}
		} else {
			out[i] = listRequest{page: 1 + rng.IntN(pages), deep: true}
		}
	}
	return out
}

func (p *platform) getPage(ctx context.Context, path string) error {
	resp, err := p.client.send(ctx, http.MethodGet, path, p.adminKey, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// readPageFromStore makes the store call of the job list handler for one page. The handler
// also authenticates the caller and reads the project and the caller's role.
func (p *platform) readPageFromStore(ctx context.Context, sid int64, page int) error {
	_, _, err := p.st.ListJobs(ctx, p.project, sid, store.JobFilter{}, store.Page{Offset: (page - 1) * listPageSize, Limit: listPageSize})
	return err
}

// listLoad is the outcome of one load: the latency of each request made (zero for requests
// not made before the time limit), and the slowest warm-up request.
type listLoad struct {
	requests  []listRequest
	latencies []time.Duration
	done      int
	elapsed   time.Duration
	warmupMax time.Duration
}

// runListLoad makes the warm-up requests, untimed but for the slowest, then the requests, each
// time from clients goroutines until all are made or timeout passes.
func runListLoad(ctx context.Context, warmup, requests []listRequest, clients int, timeout time.Duration, get func(page int) error) (*listLoad, error) {
	first, err := makeListRequests(warmup, clients, timeout, get)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	load, err := makeListRequests(requests, clients, timeout, get)
	if err != nil {
		return nil, err
	}
	load.warmupMax = slices.Max(append(first.latencies, 0))
	return load, nil
}

// makeListRequests makes the requests from clients goroutines until all are made or timeout
// passes.
func makeListRequests(requests []listRequest, clients int, timeout time.Duration, get func(page int) error) (*listLoad, error) {
	load := &listLoad{requests: requests, latencies: make([]time.Duration, len(requests))}
	deadline := time.Now().Add(timeout)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, clients)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(requests)) && errs[c] == nil && time.Now().Before(deadline); i = next.Add(1) - 1 {
				t := time.Now()
				errs[c] = get(requests[i].page)
				load.latencies[i] = time.Since(t)
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	load.elapsed, load.done = time.Since(start), int(done.Load())
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if load.done == 0 {
		return nil, fmt.Errorf("no job list request finished within %s", timeout)
	}
	return load, nil
}

// p99 returns the 99th percentile latency of the requests made that keep passes, or of all
// requests made when keep is nil.
func (l *listLoad) p99(keep func(listRequest) bool) time.Duration {
	var samples []time.Duration
	for i, d := range l.latencies {
		if d > 0 && (keep == nil || keep(l.requests[i])) {
			samples = append(samples, d)
		}
	}
	return percentile(samples, 0.99)
}

func (l *listLoad) rate() float64 { return float64(l.done) / l.elapsed.Seconds() }
