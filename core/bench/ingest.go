package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-pg/pg/v10"
)

// scratchTable receives the raw COPY limit of the ingest phase. It has job_data's columns,
// defaults, indexes and foreign key, so both runs write the same rows into the same shape.
const scratchTable = "bench_copy_scratch"

// jobWithToken is a RUNNING job and a job token that may send its data.
type jobWithToken struct {
	jid   int64
	token string
}

// measureIngest sends items in batches through the ingest endpoint from several senders, each
// with a job of its own, and COPYs the same rows into a scratch table from as many
// connections. The runs alternate; the best of each counts.
func measureIngest(ctx context.Context, p *platform, res *Results) error {
	sizes := p.opts.Sizes
	jobs, err := p.runningJobs(ctx, sizes.IngestSenders)
	if err != nil {
		return err
	}
	if err := p.createScratchTable(ctx); err != nil {
		return err
	}
	defer p.db.Exec("DROP TABLE IF EXISTS " + scratchTable)
	items := senderItems(sizes)
	copyBatches, err := buildCopyBatches(jobs, items, sizes.IngestBatchItems)
	if err != nil {
		return err
	}

	// An untimed checkpoint starts each round. Without it, the checkpoints that the phase's
	// writes trigger fell on the last rounds, while the raw COPY always runs the first one.
	bestCopy, bestAPI, err := alternate(sizes.Rounds,
		func() (time.Duration, error) {
			p.checkpoint(ctx)
			d, err := p.copyIngest(ctx, copyBatches)
			p.logRound(PhaseIngest, "raw COPY", sizes.IngestItems, d, err)
			return d, err
		},
		func(round int) (time.Duration, error) {
			p.checkpoint(ctx)
			d, err := p.apiIngest(ctx, jobs, items, round)
			p.logRound(PhaseIngest, "API", sizes.IngestItems, d, err)
			return d, err
		})
	if err != nil {
		return err
	}
	if err := p.checkIngested(ctx, jobs, sizes.IngestItems*sizes.Rounds); err != nil {
		return err
	}

	apiRate := float64(sizes.IngestItems) / bestAPI.Seconds()
	res.Limits.CopyItemsPerSecond = float64(sizes.IngestItems) / bestCopy.Seconds()
	res.IngestItemsPerSecond = ptr(apiRate)
	res.IngestVsCopyRatio = ptr(apiRate / res.Limits.CopyItemsPerSecond)
	return p.retireActiveJobs(ctx)
}

// checkpoint makes Postgres write its dirty pages now. CHECKPOINT needs a superuser or the
// pg_checkpoint role, so a user without either gets one warning and rounds start as they are.
func (p *platform) checkpoint(ctx context.Context) {
	if p.noCheckpoint {
		return
	}
	if _, err := p.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		p.noCheckpoint = true
		p.log.Warn("CHECKPOINT failed, so checkpoints may fall on some rounds", "error", err)
	}
}

// alternate runs limit and api rounds times each, limit first in even rounds and api first in
// odd ones, so that slow spells of a shared machine hit both alike. It returns the shortest
// time of each.
func alternate(rounds int, limit func() (time.Duration, error), api func(round int) (time.Duration, error)) (bestLimit, bestAPI time.Duration, err error) {
	for round := range rounds {
		for step := range 2 {
			var d time.Duration
			if (step == 0) == (round%2 == 0) {
				d, err = limit()
				bestLimit = shortest(bestLimit, d)
			} else {
				d, err = api(round)
				bestAPI = shortest(bestAPI, d)
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	return bestLimit, bestAPI, nil
}

// logRound logs how long one run of an alternating phase took, so that a slow round (a
// checkpoint, another process) shows beside the best one that counts.
func (p *platform) logRound(phase, run string, records int, d time.Duration, err error) {
	if err == nil {
		p.log.Info("round done", "phase", phase, "run", run, "seconds", fmt.Sprintf("%.2f", d.Seconds()),
			"records_per_s", fmt.Sprintf("%.0f", float64(records)/d.Seconds()))
	}
}

func shortest(best, d time.Duration) time.Duration {
	if best == 0 || d < best {
		return d
	}
	return best
}

// runningJobs creates n RUNNING jobs of the main spider, each with a job token.
func (p *platform) runningJobs(ctx context.Context, n int) ([]jobWithToken, error) {
	jobs := make([]jobWithToken, n)
	for i := range jobs {
		if _, err := p.db.QueryOneContext(ctx, pg.Scan(&jobs[i].jid), `INSERT INTO jobs (project_id, spider_id, status)
			VALUES (?, ?, 'RUNNING') RETURNING jid`, p.project, p.spiders[mainSpider]); err != nil {
			return nil, fmt.Errorf("create job: %w", err)
		}
		token, err := p.st.CreateJobToken(ctx, jobs[i].jid)
		if err != nil {
			return nil, err
		}
		jobs[i].token = token
	}
	return jobs, nil
}

func (p *platform) createScratchTable(ctx context.Context) error {
	_, err := p.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+scratchTable+`;
		CREATE TABLE `+scratchTable+` (LIKE job_data INCLUDING DEFAULTS INCLUDING INDEXES);
		ALTER TABLE `+scratchTable+` ADD FOREIGN KEY (job_id) REFERENCES jobs (jid) ON DELETE CASCADE`)
	if err != nil {
		return fmt.Errorf("create scratch table: %w", err)
	}
	return nil
}

// senderItems splits the round's items among the senders.
func senderItems(sizes Sizes) [][][]byte {
	items := make([][][]byte, sizes.IngestSenders)
	for s := range items {
		from, to := s*sizes.IngestItems/sizes.IngestSenders, (s+1)*sizes.IngestItems/sizes.IngestSenders
		for i := from; i < to; i++ {
			items[s] = append(items[s], makeItem(i, sizes.IngestItemBytes))
		}
	}
	return items
}

// buildCopyBatches encodes each sender's items as COPY rows of its job, one buffer per batch.
func buildCopyBatches(jobs []jobWithToken, items [][][]byte, batchItems int) ([][][]byte, error) {
	batches := make([][][]byte, len(items))
	for s, senderItems := range items {
		for from := 0; from < len(senderItems); from += batchItems {
			var buf bytes.Buffer
			for _, item := range senderItems[from:min(from+batchItems, len(senderItems))] {
				if err := writeCopyRow(&buf, jobs[s].jid, item); err != nil {
					return nil, err
				}
			}
			batches[s] = append(batches[s], buf.Bytes())
		}
	}
	return batches, nil
}

// copyIngest COPYs every batch into the scratch table, one COPY statement per batch and one
// connection per sender, and returns the time it took.
func (p *platform) copyIngest(ctx context.Context, batches [][][]byte) (time.Duration, error) {
	if _, err := p.db.ExecContext(ctx, "TRUNCATE "+scratchTable); err != nil {
		return 0, fmt.Errorf("empty scratch table: %w", err)
	}
	query := "COPY " + scratchTable + " (job_id, kind, data) FROM STDIN"
	return runSenders(len(batches), func(s int) error {
		for _, batch := range batches[s] {
			if _, err := p.db.WithContext(ctx).CopyFrom(bytes.NewReader(batch), query); err != nil {
				return fmt.Errorf("copy into scratch table: %w", err)
			}
		}
		return nil
	})
}

// apiIngest posts every batch to the ingest endpoint with the sender's job token and returns
// the time until the last batch was acknowledged. Bodies are encoded before the clock starts.
func (p *platform) apiIngest(ctx context.Context, jobs []jobWithToken, items [][][]byte, round int) (time.Duration, error) {
	batchItems := p.opts.Sizes.IngestBatchItems
	bodies := make([][][]byte, len(items))
	for s, senderItems := range items {
		for from := 0; from < len(senderItems); from += batchItems {
			var body bytes.Buffer
			fmt.Fprintf(&body, `{"type": "items", "batch_id": "round-%d-batch-%d", "records": [`, round, from/batchItems)
			body.Write(bytes.Join(senderItems[from:min(from+batchItems, len(senderItems))], []byte(", ")))
			body.WriteString("]}")
			bodies[s] = append(bodies[s], body.Bytes())
		}
	}
	return runSenders(len(items), func(s int) error {
		path := p.jobPath(p.spiders[mainSpider], jobs[s].jid) + "/ingest"
		for _, body := range bodies[s] {
			if err := p.client.call(ctx, http.MethodPost, path, jobs[s].token, body, "application/json", http.StatusCreated, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// runSenders runs send(0) to send(n-1) at once and returns the time until all returned.
func runSenders(n int, send func(sender int) error) (time.Duration, error) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for s := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[s] = send(s)
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// checkIngested compares the jobs' stored record count with what was sent.
func (p *platform) checkIngested(ctx context.Context, jobs []jobWithToken, want int) error {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.jid
	}
	var stored int
	if _, err := p.db.QueryOneContext(ctx, pg.Scan(&stored), "SELECT count(*) FROM job_data WHERE job_id = ANY(?)", pg.Array(ids)); err != nil {
		return err
	}
	if stored != want {
		return fmt.Errorf("the ingest jobs have %d stored items, expected %d", stored, want)
	}
	return nil
}
