package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/store"
)

const statsPath = "/api/stats/{pid:[0-9a-zA-Z-]+}"

// Messages of estela's stats routes, which the web UI shows as they are.
const (
	invalidDateMessage   = "Invalid date format. Please provide dates in the format YYYY-MM-DD."
	invalidOffsetMessage = "Invalid 'offset' parameter. Must be an integer."
)

// maxOffsetMinutes bounds the offset query parameter: time zones lie within a day of UTC.
const maxOffsetMinutes = 24 * 60

var statsQuery = []param{
	{"start_date", "first local day, YYYY-MM-DD; today when absent", map[string]any{"type": "string", "format": "date"}},
	{"end_date", "last local day, included, YYYY-MM-DD; today when absent", map[string]any{"type": "string", "format": "date"}},
	{"offset", "minutes from local time to UTC, as JavaScript's getTimezoneOffset returns them; 0 when absent",
		map[string]any{"type": "integer", "minimum": -maxOffsetMinutes, "maximum": maxOffsetMinutes}},
}

var statsPageQuery = append([]param{
	{"page", "page number, from 1", map[string]any{"type": "integer", "minimum": 1}},
	{"page_size", "results per page, default 10, at most 100", map[string]any{"type": "integer", "minimum": 1, "maximum": 100}},
}, statsQuery...)

var usageQuery = []param{
	{"start_date", "YYYY-MM-DD or an RFC 3339 time; the first day of the current month (UTC) when absent", map[string]any{"type": "string"}},
	{"end_date", "YYYY-MM-DD (the day is included) or an RFC 3339 time; now when absent", map[string]any{"type": "string"}},
}

func (s *Server) statsRoutes() []route {
	return []route{
		{http.MethodGet, statsPath, token, s.projectStats, doc{summary: "Summarize a project's jobs per local day, newest day first", tag: "stats", response: []statsDayDTO{}, query: statsQuery}},
		{http.MethodGet, statsPath + "/spiders", token, s.statsSpiders, doc{summary: "List the spiders that have jobs in the date range", tag: "stats", response: pageOf[spiderDTO]{}, query: statsPageQuery}},
		{http.MethodGet, statsPath + "/spider/{sid:[0-9]+}", token, s.spiderStats, doc{summary: "Summarize a spider's jobs per local day, newest day first", tag: "stats", response: []statsDayDTO{}, query: statsQuery}},
		{http.MethodGet, statsPath + "/spider/{sid:[0-9]+}/jobs", token, s.statsSpiderJobs, doc{summary: "List a spider's jobs in the date range with their stats, newest first", tag: "stats", response: pageOf[statsJobDTO]{}, query: statsPageQuery}},
		{http.MethodGet, projectPath + "/current_usage", token, s.currentUsage, doc{summary: "Sum what every job of a project used", tag: "projects", response: currentUsageDTO{}}},
		{http.MethodGet, projectPath + "/usage", token, s.usageHistory, doc{summary: "List a project's cumulative usage at the end of each day on which a job ended, newest first", tag: "projects", response: []usageRecordDTO{}, query: usageQuery}},
		{http.MethodGet, projectPath + "/resource_status", token, s.resourceStatus, doc{summary: "Compare the memory that the active jobs of the project owner's projects request with the owner's quota", tag: "projects", response: resourceStatusDTO{}}},
	}
}

// errQuery gives estela's {"error": msg} body for an invalid query parameter, and the
// parameter's name with the same message.
func errQuery(name, msg string) error {
	return &apiError{http.StatusBadRequest, map[string]any{"error": msg, name: []string{msg}}}
}

// readStatsWindow reads start_date, end_date and offset. The window runs from local midnight
// of start_date to the end of end_date, local time being UTC minus offset minutes.
func readStatsWindow(r *http.Request, pid string) (store.StatsWindow, error) {
	q := r.URL.Query()
	w := store.StatsWindow{ProjectID: pid}
	if raw := strings.TrimSpace(q.Get("offset")); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			return w, errQuery("offset", invalidOffsetMessage)
		}
		if n < -maxOffsetMinutes || n > maxOffsetMinutes {
			return w, errQuery("offset", fmt.Sprintf("Invalid 'offset' parameter. Must be between %d and %d minutes.", -maxOffsetMinutes, maxOffsetMinutes))
		}
		w.OffsetMinutes = n
	}
	shift := time.Duration(w.OffsetMinutes) * time.Minute
	today := time.Now().UTC().Add(-shift).Truncate(24 * time.Hour)
	start, err := readDay(q, "start_date", today)
	if err != nil {
		return w, err
	}
	end, err := readDay(q, "end_date", today)
	if err != nil {
		return w, err
	}
	if end.Before(start) {
		return w, errQuery("end_date", "end_date must not be before start_date.")
	}
	w.From, w.To = start.Add(shift), end.AddDate(0, 0, 1).Add(shift)
	return w, nil
}

// readDay reads a YYYY-MM-DD query parameter as midnight UTC, or returns def when it is absent.
func readDay(q url.Values, name string, def time.Time) (time.Time, error) {
	raw := strings.TrimSpace(q.Get(name))
	if raw == "" {
		return def, nil
	}
	day, err := time.Parse("2006-1-2", raw)
	if err != nil {
		return day, errQuery(name, invalidDateMessage)
	}
	return day, nil
}

// projectStats summarizes the jobs of a project per local day of their creation.
func (s *Server) projectStats(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}
	window, err := readStatsWindow(r, p.PID)
	if err != nil {
		return nil, err
	}

	days, err := s.store.DailyStats(r.Context(), window)
	if err != nil {
		return nil, err
	}
	return statsDaysDTO(days), nil
}

// spiderStats summarizes the jobs of one spider of the project per local day. A spider of
// another project is not found.
func (s *Server) spiderStats(_ http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}
	window, err := readStatsWindow(r, p.PID)
	if err != nil {
		return nil, err
	}

	if _, err := s.store.SpiderOfProject(r.Context(), p.PID, sid); err != nil {
		return nil, err
	}
	window.SpiderID = sid
	days, err := s.store.DailyStats(r.Context(), window)
	if err != nil {
		return nil, err
	}
	return statsDaysDTO(days), nil
}

// statsSpiders lists the project's spiders, deleted ones included, that have jobs in the window.
func (s *Server) statsSpiders(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 10, 100)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}
	window, err := readStatsWindow(r, p.PID)
	if err != nil {
		return nil, err
	}

	spiders, count, err := s.store.SpidersWithJobs(r.Context(), window, page.store())
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(spiders))
	for i, sp := range spiders {
		ids[i] = sp.SID
	}
	vars, err := s.store.EnvVarsOfSpiders(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]spiderDTO, len(spiders))
	for i := range spiders {
		out[i] = spiderToDTO(&spiders[i], vars[spiders[i].SID])
	}
	return envelope(r, page, count, out)
}

// statsSpiderJobs lists the jobs of one spider of the project created in the window, each
// with the counters of its stored stats.
func (s *Server) statsSpiderJobs(_ http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	page, err := readPage(r, 10, 100)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}
	window, err := readStatsWindow(r, p.PID)
	if err != nil {
		return nil, err
	}

	if _, err := s.store.SpiderOfProject(r.Context(), p.PID, sid); err != nil {
		return nil, err
	}
	window.SpiderID = sid
	jobs, count, err := s.store.JobsInWindow(r.Context(), window, page.store())
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
	counters, err := s.store.JobScrapyCounters(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]statsJobDTO, len(jobs))
	for i := range jobs {
		out[i] = statsJobToDTO(jobToDTO(&jobs[i], vars[jobs[i].JID]), counters[jobs[i].JID])
	}
	return envelope(r, page, count, out)
}

// currentUsage sums what every job of the project used so far.
func (s *Server) currentUsage(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	u, err := s.store.ProjectUsage(r.Context(), p.PID)
	if err != nil {
		return nil, err
	}
	return currentUsageDTO{
		PID: p.PID, Name: p.Name, NetworkUsage: u.NetworkBytes, ProcessingTime: float64(u.LifespanMicros) / 1e6,
		ItemCount: u.ItemCount, RequestCount: u.RequestCount,
		ItemsDataSize: u.ItemsDataSize, RequestsDataSize: u.RequestsDataSize, LogsDataSize: u.LogsDataSize,
	}, nil
}

// usageHistory returns the project's cumulative usage at the end of each day of the range on
// which one of its jobs ended.
func (s *Server) usageHistory(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}
	from, to, err := readUsageRange(r.URL.Query(), time.Now().UTC())
	if err != nil {
		return nil, err
	}

	snapshots, err := s.store.UsageHistory(r.Context(), p.PID, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]usageRecordDTO, len(snapshots))
	for i, u := range snapshots {
		out[i] = usageRecordDTO{
			CreatedAt: formatJobTime(u.At), ProcessingTime: formatDuration(u.LifespanMicros), NetworkUsage: u.NetworkBytes,
			ItemCount: u.ItemCount, RequestCount: u.RequestCount,
			ItemsDataSize: u.ItemsDataSize, RequestsDataSize: u.RequestsDataSize, LogsDataSize: u.LogsDataSize,
		}
	}
	return out, nil
}

// readUsageRange reads the [from, to) range of the usage route. Unlike estela, the default
// start is midnight of the month's first day and a date-only end_date includes that day.
func readUsageRange(q url.Values, now time.Time) (time.Time, time.Time, error) {
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := now
	if raw := strings.TrimSpace(q.Get("start_date")); raw != "" {
		t, _, err := parseDayOrTime(raw)
		if err != nil {
			return from, to, errQuery("start_date", err.Error())
		}
		from = t
	}
	if raw := strings.TrimSpace(q.Get("end_date")); raw != "" {
		t, dateOnly, err := parseDayOrTime(raw)
		if err != nil {
			return from, to, errQuery("end_date", err.Error())
		}
		to = t
		if dateOnly {
			to = t.AddDate(0, 0, 1)
		}
	}
	if !to.After(from) {
		return from, to, errQuery("end_date", "end_date must be after start_date.")
	}
	return from, to, nil
}

// parseDayOrTime parses YYYY-MM-DD as midnight UTC, or an RFC 3339 time.
func parseDayOrTime(s string) (time.Time, bool, error) {
	if t, err := time.Parse("2006-1-2", s); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), false, nil
	}
	return time.Time{}, false, fmt.Errorf("invalid date %q: use YYYY-MM-DD or an RFC 3339 time such as 2024-05-01T00:00:00Z", s)
}

// resourceStatus compares the memory requested by the WAITING and RUNNING jobs of every
// project of the project's owner with the owner's quota, both in MiB.
func (s *Server) resourceStatus(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	quota, err := s.store.OwnerQuotaOf(r.Context(), p.PID)
	if err != nil {
		return nil, err
	}
	var usedMi int64
	for tierName, jobs := range quota.ActiveJobsByTier {
		tier, ok := dispatch.Tiers[tierName]
		if !ok {
			tier = dispatch.Tiers[dispatch.DefaultTier]
		}
		usedMi += int64(jobs) * tier.Resources.MemoryRequestBytes / (1 << 20)
	}
	out := resourceStatusDTO{MemoryUsed: usedMi, MemoryQuota: quota.QuotaMi}
	if quota.QuotaMi > 0 {
		out.UsedPct = math.Round(float64(usedMi)/float64(quota.QuotaMi)*1000) / 10
	}
	return out, nil
}

// Wire shapes of the stats and usage routes.

type statsDayDTO struct {
	// Date is the local day, written as estela does: YYYY-MM-DDT00:00:00.
	Date  string   `json:"date"`
	Stats statsDTO `json:"stats"`
}

type statsDTO struct {
	Jobs        statsJobsDTO        `json:"jobs"`
	Pages       statsPagesDTO       `json:"pages"`
	ItemsCount  int64               `json:"items_count"`
	Runtime     string              `json:"runtime" doc:"sum of the jobs' lifespans, [D ]HH:MM:SS[.ffffff]"`
	StatusCodes statsStatusCodesDTO `json:"status_codes"`
	SuccessRate float64             `json:"success_rate" doc:"percentage of the jobs that completed"`
	Logs        statsLogsDTO        `json:"logs"`
	Coverage    statsCoverageDTO    `json:"coverage"`
}

type statsJobsDTO struct {
	TotalJobs     int64 `json:"total_jobs"`
	WaitingJobs   int64 `json:"waiting_jobs"`
	RunningJobs   int64 `json:"running_jobs"`
	StoppedJobs   int64 `json:"stopped_jobs"`
	CompletedJobs int64 `json:"completed_jobs"`
	InQueueJobs   int64 `json:"in_queue_jobs"`
	ErrorJobs     int64 `json:"error_jobs"`
}

type statsPagesDTO struct {
	TotalPages   int64 `json:"total_pages" doc:"Scrapy's response_received_count"`
	ScrapedPages int64 `json:"scraped_pages" doc:"responses with status 200"`
	MissedPages  int64 `json:"missed_pages" doc:"total_pages minus scraped_pages"`
}

type statsStatusCodesDTO struct {
	Status200 int64 `json:"status_200"`
	Status301 int64 `json:"status_301"`
	Status302 int64 `json:"status_302"`
	Status401 int64 `json:"status_401"`
	Status403 int64 `json:"status_403"`
	Status404 int64 `json:"status_404"`
	Status429 int64 `json:"status_429"`
	Status500 int64 `json:"status_500"`
}

type statsLogsDTO struct {
	TotalLogs    int64 `json:"total_logs"`
	DebugLogs    int64 `json:"debug_logs"`
	InfoLogs     int64 `json:"info_logs"`
	WarningLogs  int64 `json:"warning_logs"`
	ErrorLogs    int64 `json:"error_logs"`
	CriticalLogs int64 `json:"critical_logs"`
}

type statsCoverageDTO struct {
	TotalItems         int64   `json:"total_items"`
	TotalItemsCoverage float64 `json:"total_items_coverage" doc:"mean over the completed jobs"`
}

// jobStatsDTO is the stats of one job in the spider jobs list.
type jobStatsDTO struct {
	ItemsCount  int64               `json:"items_count"`
	Runtime     string              `json:"runtime" doc:"Scrapy's elapsed_time_seconds, or the lifespan without stats"`
	SuccessRate float64             `json:"success_rate" doc:"100 for a completed job, else 0"`
	Pages       statsPagesDTO       `json:"pages"`
	StatusCodes statsStatusCodesDTO `json:"status_codes"`
	Logs        statsLogsDTO        `json:"logs"`
}

// statsJobDTO is a job (the fields of jobDTO) with its stats.
type statsJobDTO struct {
	JID                       int64          `json:"jid"`
	Spider                    spiderRefDTO   `json:"spider"`
	Created                   string         `json:"created"`
	Name                      string         `json:"name"`
	Lifespan                  string         `json:"lifespan"`
	TotalResponseBytes        int64          `json:"total_response_bytes"`
	ItemCount                 int64          `json:"item_count"`
	RequestCount              int64          `json:"request_count"`
	Args                      []argDTO       `json:"args"`
	EnvVars                   []envVarDTO    `json:"env_vars"`
	Tags                      []tagDTO       `json:"tags"`
	JobStatus                 string         `json:"job_status"`
	Cronjob                   *int64         `json:"cronjob"`
	DataExpiryDays            *int           `json:"data_expiry_days"`
	DataStatus                string         `json:"data_status"`
	DatabaseInsertionProgress float64        `json:"database_insertion_progress"`
	StorageSize               int64          `json:"storage_size" doc:"about how many bytes of JSON the job's stored items, requests and logs take"`
	ResourceTier              string         `json:"resource_tier"`
	PeakMemory                *int64         `json:"peak_memory" doc:"peak memory in bytes from the job's final stats; null until they arrive"`
	ErrorReason               string         `json:"error_reason"`
	ProxyUsageData            map[string]any `json:"proxy_usage_data"`
	Stats                     jobStatsDTO    `json:"stats"`
}

type currentUsageDTO struct {
	PID              string  `json:"pid"`
	Name             string  `json:"name"`
	NetworkUsage     int64   `json:"network_usage" doc:"bytes of the responses the jobs downloaded"`
	ProcessingTime   float64 `json:"processing_time" doc:"seconds, the sum of the jobs' lifespans"`
	ItemCount        int64   `json:"item_count"`
	RequestCount     int64   `json:"request_count"`
	ItemsDataSize    int64   `json:"items_data_size" doc:"bytes PostgreSQL stores for the items (pg_column_size, after compression)"`
	RequestsDataSize int64   `json:"requests_data_size" doc:"bytes PostgreSQL stores for the requests"`
	LogsDataSize     int64   `json:"logs_data_size" doc:"bytes PostgreSQL stores for the logs"`
}

type usageRecordDTO struct {
	CreatedAt        string `json:"created_at" doc:"when the last job of the day ended"`
	ProcessingTime   string `json:"processing_time" doc:"[D ]HH:MM:SS[.ffffff]"`
	NetworkUsage     int64  `json:"network_usage"`
	ItemCount        int64  `json:"item_count"`
	RequestCount     int64  `json:"request_count"`
	ItemsDataSize    int64  `json:"items_data_size"`
	RequestsDataSize int64  `json:"requests_data_size"`
	LogsDataSize     int64  `json:"logs_data_size"`
}

type resourceStatusDTO struct {
	MemoryUsed  int64   `json:"memory_used" doc:"MiB requested by the tiers of the owner's WAITING and RUNNING jobs"`
	MemoryQuota int     `json:"memory_quota" doc:"the owner's quota in MiB"`
	UsedPct     float64 `json:"used_pct" doc:"memory_used as a percentage of memory_quota, one decimal"`
}

func statsDaysDTO(days []store.DayStats) []statsDayDTO {
	out := make([]statsDayDTO, len(days))
	for i, d := range days {
		stats := statsDTO{
			Jobs:        statsJobsDTO(d.JobCounts),
			Pages:       pagesOf(d.ScrapyCounters),
			ItemsCount:  d.Items,
			Runtime:     formatDuration(d.RuntimeMicros),
			StatusCodes: statusCodesOf(d.ScrapyCounters),
			Logs:        logsOf(d.ScrapyCounters),
			Coverage:    statsCoverageDTO{TotalItems: d.CoverageItems},
		}
		if d.TotalJobs > 0 {
			stats.SuccessRate = 100 * float64(d.CompletedJobs) / float64(d.TotalJobs)
		}
		if d.CompletedJobs > 0 {
			stats.Coverage.TotalItemsCoverage = d.CoveragePercent / float64(d.CompletedJobs)
		}
		out[i] = statsDayDTO{Date: d.Day + "T00:00:00", Stats: stats}
	}
	return out
}

func pagesOf(c store.ScrapyCounters) statsPagesDTO {
	return statsPagesDTO{TotalPages: c.TotalPages, ScrapedPages: c.ScrapedPages, MissedPages: c.TotalPages - c.ScrapedPages}
}

func statusCodesOf(c store.ScrapyCounters) statsStatusCodesDTO {
	return statsStatusCodesDTO{c.Status200, c.Status301, c.Status302, c.Status401, c.Status403, c.Status404, c.Status429, c.Status500}
}

func logsOf(c store.ScrapyCounters) statsLogsDTO {
	return statsLogsDTO{
		TotalLogs: c.DebugLogs + c.InfoLogs + c.WarningLogs + c.ErrorLogs + c.CriticalLogs,
		DebugLogs: c.DebugLogs, InfoLogs: c.InfoLogs, WarningLogs: c.WarningLogs, ErrorLogs: c.ErrorLogs, CriticalLogs: c.CriticalLogs,
	}
}

func statsJobToDTO(j jobDTO, c store.ScrapyCounters) statsJobDTO {
	stats := jobStatsDTO{
		ItemsCount: c.Items, Runtime: formatDuration(c.RuntimeMicros),
		Pages: pagesOf(c), StatusCodes: statusCodesOf(c), Logs: logsOf(c),
	}
	if j.JobStatus == store.JobCompleted {
		stats.SuccessRate = 100
	}
	return statsJobDTO{
		JID: j.JID, Spider: j.Spider, Created: j.Created, Name: j.Name, Lifespan: j.Lifespan,
		TotalResponseBytes: j.TotalResponseBytes, ItemCount: j.ItemCount, RequestCount: j.RequestCount,
		Args: j.Args, EnvVars: j.EnvVars, Tags: j.Tags, JobStatus: j.JobStatus, Cronjob: j.Cronjob,
		DataExpiryDays: j.DataExpiryDays, DataStatus: j.DataStatus, DatabaseInsertionProgress: j.DatabaseInsertionProgress,
		StorageSize: j.StorageSize, ResourceTier: j.ResourceTier, PeakMemory: j.PeakMemory, ErrorReason: j.ErrorReason,
		ProxyUsageData: j.ProxyUsageData, Stats: stats,
	}
}
