package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-pg/pg/v10"
)

// measureExport downloads a job's items as JSONL through the API and reads the same rows with
// a raw COPY TO STDOUT. The two alternate and the best of each counts. The API process's peak
// resident memory is read around each download.
func measureExport(ctx context.Context, p *platform, res *Results) error {
	sizes := p.opts.Sizes
	jid, err := p.exportJob(ctx, sizes.ExportItems)
	if err != nil {
		return err
	}
	// The first read of freshly loaded rows sets their hint bits; neither timed run pays it.
	if _, _, err := p.copyExport(ctx, jid); err != nil {
		return err
	}
	pid := p.api.cmd.Process.Pid
	if idle, err := memoryMiB(pid, "VmRSS"); err == nil {
		res.Limits.IdleRSSMB = idle
	}

	var apiBytes, copyBytes int64
	peak := -1.0
	bestCopy, bestAPI, err := alternate(sizes.Rounds,
		func() (d time.Duration, err error) {
			d, copyBytes, err = p.copyExport(ctx, jid)
			p.logRound(PhaseExport, "raw COPY TO", sizes.ExportItems, d, err)
			return d, err
		},
		func(int) (d time.Duration, err error) {
			var rss float64
			d, apiBytes, rss, err = p.apiExport(ctx, jid, sizes.ExportItems)
			peak = max(peak, rss)
			p.logRound(PhaseExport, "API", sizes.ExportItems, d, err)
			return d, err
		})
	if err != nil {
		return err
	}

	res.ExportMBPerSecond = ptr(float64(apiBytes) / MiB / bestAPI.Seconds())
	res.Limits.CopyExportMBPerSecond = float64(copyBytes) / MiB / bestCopy.Seconds()
	res.ExportVsCopyRatio = ptr(bestCopy.Seconds() / bestAPI.Seconds())
	if peak >= 0 {
		res.ExportPeakRSSMB = ptr(peak)
	}
	return nil
}

// exportJob creates a COMPLETED job and COPYs n items into its data, with the batch ledger
// row that the API counts records from.
func (p *platform) exportJob(ctx context.Context, n int) (int64, error) {
	var jid int64
	if _, err := p.db.QueryOneContext(ctx, pg.Scan(&jid), `INSERT INTO jobs (project_id, spider_id, status)
		VALUES (?, ?, 'COMPLETED') RETURNING jid`, p.project, p.spiders[mainSpider]); err != nil {
		return 0, fmt.Errorf("create export job: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		var err error
		for i := 0; i < n && err == nil; i++ {
			err = writeCopyRow(w, jid, makeItem(i, p.opts.Sizes.IngestItemBytes))
		}
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	_, err := p.db.WithContext(ctx).CopyFrom(pr, "COPY job_data (job_id, kind, data) FROM STDIN")
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return 0, fmt.Errorf("load export items: %w", err)
	}
	_, err = p.db.ExecContext(ctx, `INSERT INTO job_data_batches (job_id, batch_id, kind, records)
		VALUES (?, 'bench-export', 1, ?)`, jid, n)
	return jid, err
}

// copyExport runs the store's export query as a raw COPY TO STDOUT and discards the rows.
func (p *platform) copyExport(ctx context.Context, jid int64) (time.Duration, int64, error) {
	counter := &countingWriter{}
	start := time.Now()
	query := fmt.Sprintf("COPY (SELECT data FROM job_data WHERE job_id = %d AND kind = 1 ORDER BY id) TO STDOUT", jid)
	if _, err := p.db.WithContext(ctx).CopyTo(counter, query); err != nil {
		return 0, 0, fmt.Errorf("copy export rows: %w", err)
	}
	return time.Since(start), counter.n, nil
}

// apiExport downloads the job's items as JSONL, checks that every item arrived, and returns
// the time, the bytes, and the API process's peak resident memory during the download in MiB
// (-1 where it cannot be read).
func (p *platform) apiExport(ctx context.Context, jid int64, items int) (time.Duration, int64, float64, error) {
	pid := p.api.cmd.Process.Pid
	if err := resetPeakRSS(pid); err != nil {
		p.log.Warn("reset peak memory of the API process; the peak covers its whole life", "pid", pid, "error", err)
	}
	path := p.jobPath(p.spiders[mainSpider], jid) + "/data/download?type=items&format=jsonl"
	start := time.Now()
	resp, err := p.client.send(ctx, http.MethodGet, path, p.adminKey, nil, "")
	if err != nil {
		return 0, 0, 0, fmt.Errorf("download items: %w", err)
	}
	defer resp.Body.Close()
	n, lines, err := drain(resp.Body)
	elapsed := time.Since(start)
	switch {
	case err != nil:
		return 0, 0, 0, fmt.Errorf("download items: %w", err)
	case resp.StatusCode != http.StatusOK:
		return 0, 0, 0, fmt.Errorf("download items: status %d", resp.StatusCode)
	case lines != int64(items):
		return 0, 0, 0, fmt.Errorf("the download has %d lines, expected %d", lines, items)
	}
	rss, err := memoryMiB(pid, "VmHWM")
	if err != nil {
		p.log.Warn("read peak memory of the API process", "pid", pid, "error", err)
		rss = -1
	}
	return elapsed, n, rss, nil
}

// countingWriter discards what it is given and counts the bytes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}
