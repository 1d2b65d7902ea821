package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-pg/pg/v10"
)

// JobCounts counts jobs by status.
type JobCounts struct {
	TotalJobs     int64 `pg:"total_jobs"`
	WaitingJobs   int64 `pg:"waiting_jobs"`
	RunningJobs   int64 `pg:"running_jobs"`
	StoppedJobs   int64 `pg:"stopped_jobs"`
	CompletedJobs int64 `pg:"completed_jobs"`
	InQueueJobs   int64 `pg:"in_queue_jobs"`
	ErrorJobs     int64 `pg:"error_jobs"`
}

// ScrapyCounters are the counters of Scrapy's final stats that the stats routes show, summed
// over a set of jobs. A job without stored stats counts zero, except for items, where its
// item_count column counts.
type ScrapyCounters struct {
	Items           int64   `pg:"items_count"`
	RuntimeMicros   int64   `pg:"runtime_us"`
	TotalPages      int64   `pg:"total_pages"`
	ScrapedPages    int64   `pg:"scraped_pages"`
	Status200       int64   `pg:"status_200"`
	Status301       int64   `pg:"status_301"`
	Status302       int64   `pg:"status_302"`
	Status401       int64   `pg:"status_401"`
	Status403       int64   `pg:"status_403"`
	Status404       int64   `pg:"status_404"`
	Status429       int64   `pg:"status_429"`
	Status500       int64   `pg:"status_500"`
	DebugLogs       int64   `pg:"debug_logs"`
	InfoLogs        int64   `pg:"info_logs"`
	WarningLogs     int64   `pg:"warning_logs"`
	ErrorLogs       int64   `pg:"error_logs"`
	CriticalLogs    int64   `pg:"critical_logs"`
	CoverageItems   int64   `pg:"coverage_items"`
	CoveragePercent float64 `pg:"coverage_percent"`
}

// scrapyStatsKeys maps the integer columns of ScrapyCounters to the path of their key in a
// job's stats document (job_stats.stats).
var scrapyStatsKeys = []struct {
	column string
	path   []string
}{
	{"total_pages", []string{"response_received_count"}},
	{"scraped_pages", []string{"downloader/response_status_count/200"}},
	{"status_200", []string{"downloader/response_status_count/200"}},
	{"status_301", []string{"downloader/response_status_count/301"}},
	{"status_302", []string{"downloader/response_status_count/302"}},
	{"status_401", []string{"downloader/response_status_count/401"}},
	{"status_403", []string{"downloader/response_status_count/403"}},
	{"status_404", []string{"downloader/response_status_count/404"}},
	{"status_429", []string{"downloader/response_status_count/429"}},
	{"status_500", []string{"downloader/response_status_count/500"}},
	{"debug_logs", []string{"log_count/DEBUG"}},
	{"info_logs", []string{"log_count/INFO"}},
	{"warning_logs", []string{"log_count/WARNING"}},
	{"error_logs", []string{"log_count/ERROR"}},
	{"critical_logs", []string{"log_count/CRITICAL"}},
	{"coverage_items", []string{"coverage", "total_items"}},
}

// bigintOf clamps a double precision expression into bigint, so that absurd values in a stats
// document cannot make the cast fail.
func bigintOf(expr string) string {
	return "greatest(least(" + expr + ", 9.2e18), -9.2e18)::bigint"
}

// counterColumns returns the select list of ScrapyCounters over jobs j joined with job_stats js,
// and its parameters. With sum, each column is summed over the group.
func counterColumns(sum bool) (string, []any) {
	agg := func(expr string) string {
		if sum {
			return "coalesce(sum(" + expr + "), 0)"
		}
		return "coalesce(" + expr + ", 0)"
	}
	cols := []string{
		bigintOf(agg("coalesce(job_stats_number(js.stats, '{item_scraped_count}'), j.item_count)")) + " AS items_count",
	}
	if sum {
		cols = append(cols, "coalesce(sum(j.lifespan_us), 0)::bigint AS runtime_us")
	} else {
		// A single job's runtime is Scrapy's elapsed time, or its lifespan without stats.
		cols = append(cols, bigintOf("coalesce(job_stats_number(js.stats, '{elapsed_time_seconds}') * 1e6, j.lifespan_us)")+" AS runtime_us")
	}
	var params []any
	for _, k := range scrapyStatsKeys {
		cols = append(cols, bigintOf(agg("job_stats_number(js.stats, ?)"))+" AS "+k.column)
		params = append(params, pg.Array(k.path))
	}
	cols = append(cols, agg("job_stats_number(js.stats, '{coverage,total_items_coverage}')")+" AS coverage_percent")
	return strings.Join(cols, ",\n\t"), params
}

const jobCountColumns = `count(*) AS total_jobs,
	count(*) FILTER (WHERE j.status = 'WAITING') AS waiting_jobs,
	count(*) FILTER (WHERE j.status = 'RUNNING') AS running_jobs,
	count(*) FILTER (WHERE j.status = 'STOPPED') AS stopped_jobs,
	count(*) FILTER (WHERE j.status = 'COMPLETED') AS completed_jobs,
	count(*) FILTER (WHERE j.status = 'IN_QUEUE') AS in_queue_jobs,
	count(*) FILTER (WHERE j.status = 'ERROR') AS error_jobs`

// StatsWindow selects the jobs of a project, or of one of its spiders, created in [From, To).
type StatsWindow struct {
	ProjectID string
	// SpiderID limits the window to one spider when not 0.
	SpiderID int64
	From, To time.Time
	// OffsetMinutes is the client's UTC offset as JavaScript's getTimezoneOffset gives it (UTC
	// minus local time); days are the client's local days.
	OffsetMinutes int
}

func (w StatsWindow) where() (string, []any) {
	where := "j.project_id = ? AND j.created >= ? AND j.created < ?"
	params := []any{w.ProjectID, w.From, w.To}
	if w.SpiderID != 0 {
		where += " AND j.spider_id = ?"
		params = append(params, w.SpiderID)
	}
	return where, params
}

// DayStats are the stats of the jobs created on one local day.
type DayStats struct {
	// Day is the local date, YYYY-MM-DD.
	Day string `pg:"day"`
	JobCounts
	ScrapyCounters
}

// DailyStats aggregates the jobs of a window by the local day of their creation, newest day
// first. Days without jobs are left out.
func (s *Store) DailyStats(ctx context.Context, w StatsWindow) ([]DayStats, error) {
	counters, counterParams := counterColumns(true)
	where, whereParams := w.where()
	query := `SELECT to_char((j.created AT TIME ZONE 'UTC') - ? * interval '1 minute', 'YYYY-MM-DD') AS day,
	` + jobCountColumns + `,
	` + counters + `
	FROM jobs j LEFT JOIN job_stats js ON js.job_id = j.jid
	WHERE ` + where + `
	GROUP BY 1 ORDER BY 1 DESC`
	params := append([]any{w.OffsetMinutes}, counterParams...)
	var out []DayStats
	_, err := s.db.QueryContext(ctx, &out, query, append(params, whereParams...)...)
	return out, mapError("aggregate daily stats", err)
}

// JobScrapyCounters returns the counters of each of the given jobs, keyed by job id.
func (s *Store) JobScrapyCounters(ctx context.Context, jids []int64) (map[int64]ScrapyCounters, error) {
	out := make(map[int64]ScrapyCounters, len(jids))
	if len(jids) == 0 {
		return out, nil
	}
	counters, params := counterColumns(false)
	var rows []struct {
		JID int64 `pg:"jid"`
		ScrapyCounters
	}
	_, err := s.db.QueryContext(ctx, &rows, "SELECT j.jid, "+counters+`
		FROM jobs j LEFT JOIN job_stats js ON js.job_id = j.jid WHERE j.jid = ANY(?)`, append(params, pg.Array(jids))...)
	for _, r := range rows {
		out[r.JID] = r.ScrapyCounters
	}
	return out, mapError("read job stats counters", err)
}

// SpiderOfProject loads a spider of a project, deleted or not, since the jobs of deleted
// spiders still count in stats.
func (s *Store) SpiderOfProject(ctx context.Context, pid string, sid int64) (*Spider, error) {
	sp := &Spider{}
	err := s.db.ModelContext(ctx, sp).Where("sid = ? AND project_id = ?", sid, pid).Select()
	return sp, mapError(fmt.Sprintf("load spider %d", sid), err)
}

// SpidersWithJobs returns one page of the spiders of a window's project that have a job in the
// window, deleted spiders included, ordered by id, and their count.
func (s *Store) SpidersWithJobs(ctx context.Context, w StatsWindow, page Page) ([]Spider, int, error) {
	w.SpiderID = 0
	where, params := w.where()
	filter := "s.project_id = ? AND EXISTS (SELECT 1 FROM jobs j WHERE j.spider_id = s.sid AND " + where + ")"
	params = append([]any{w.ProjectID}, params...)
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM spiders s WHERE "+filter, params...); err != nil {
		return nil, 0, mapError("count spiders with jobs", err)
	}
	var spiders []Spider
	_, err := s.db.QueryContext(ctx, &spiders, "SELECT s.* FROM spiders s WHERE "+filter+" ORDER BY s.sid OFFSET ? LIMIT ?",
		append(params, page.Offset, page.Limit)...)
	return spiders, count, mapError("list spiders with jobs", err)
}

// EnvVarsOfSpiders returns the environment variables of several spiders, keyed by spider id.
func (s *Store) EnvVarsOfSpiders(ctx context.Context, sids []int64) (map[int64][]EnvVar, error) {
	out := make(map[int64][]EnvVar, len(sids))
	if len(sids) == 0 {
		return out, nil
	}
	var vars []EnvVar
	err := s.db.ModelContext(ctx, &vars).Where("spider_id = ANY(?)", pg.Array(sids)).Order("evid").Select()
	for _, v := range vars {
		out[*v.SpiderID] = append(out[*v.SpiderID], v)
	}
	return out, mapError("list env vars of spiders", err)
}

// JobsInWindow returns one page of the jobs of a window, newest first, and their count.
func (s *Store) JobsInWindow(ctx context.Context, w StatsWindow, page Page) ([]Job, int, error) {
	where, params := w.where()
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM jobs j WHERE "+where, params...); err != nil {
		return nil, 0, mapError("count jobs in window", err)
	}
	var jobs []Job
	_, err := s.db.QueryContext(ctx, &jobs, "SELECT "+jobColumns+" FROM jobs j JOIN spiders s ON s.sid = j.spider_id WHERE "+
		where+" ORDER BY j.created DESC, j.jid DESC OFFSET ? LIMIT ?", append(params, page.Offset, page.Limit)...)
	return jobs, count, mapError("list jobs in window", err)
}
