package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Results are the figures of one run. A nil figure was not measured (its phase was skipped or
// failed) and is null in the JSON.
type Results struct {
	DispatchJobsPerSecond       *float64 `json:"dispatch_jobs_per_s"`
	PluginRPCP50Micros          *float64 `json:"plugin_rpc_p50_us"`
	PluginRPCP99Micros          *float64 `json:"plugin_rpc_p99_us"`
	IngestItemsPerSecond        *float64 `json:"ingest_items_per_s"`
	IngestVsCopyRatio           *float64 `json:"ingest_vs_copy_ratio"`
	ExportMBPerSecond           *float64 `json:"export_mb_per_s"`
	ExportVsCopyRatio           *float64 `json:"export_vs_copy_ratio"`
	ExportPeakRSSMB             *float64 `json:"export_peak_rss_mb"`
	JobListP99Millis            *float64 `json:"job_list_p99_ms"`
	JobListRequestsPerSecond    *float64 `json:"job_list_req_per_s"`
	ReconcileEngineCallsPerTick *float64 `json:"reconcile_engine_calls_per_tick"`
	ReconcileTickMillis         *float64 `json:"reconcile_tick_ms"`
	CronLateP99Millis           *float64 `json:"cron_late_p99_ms"`
	CronDuplicates              *float64 `json:"cron_duplicates"`
	CronMissed                  *float64 `json:"cron_missed"`
	Sizes                       Sizes    `json:"sizes"`
	// Limits are the figures measured beside the results, shown in the table only.
	Limits Limits `json:"-"`
}

// Limits are the reference figures each result is read against.
type Limits struct {
	// CreateJobsPerSecond is the rate of job creation through the API alone.
	CreateJobsPerSecond float64
	// DispatchCodeJobsPerSecond is the rate of the worker's dispatch code called in-process
	// from as many goroutines as a worker runs tasks, without the API and the queue.
	DispatchCodeJobsPerSecond float64
	// RawRPCP50Micros and RawRPCP99Micros time GetJob on a bare go-plugin client: the SDK's
	// client, with its call streams, without the plugin host.
	RawRPCP50Micros float64
	RawRPCP99Micros float64
	// CopyItemsPerSecond is the rate of raw COPY of the ingest phase's rows into a scratch table.
	CopyItemsPerSecond float64
	// CopyExportMBPerSecond is the rate of raw COPY TO STDOUT of the exported rows.
	CopyExportMBPerSecond float64
	// IdleRSSMB is the API process's resident memory before the export.
	IdleRSSMB float64
	// StoreListP99Millis and StoreListRequestsPerSecond time the job list's store calls
	// in-process, without HTTP and authentication.
	StoreListP99Millis         float64
	StoreListRequestsPerSecond float64
	// HealthP99Millis and HealthRequestsPerSecond time GET / (a plain OK that reads nothing)
	// with the job list's clients and request count: the floor of any request on the machine.
	HealthP99Millis         float64
	HealthRequestsPerSecond float64
	// WarmupMaxMillis is the slowest of the job list's untimed first requests through the API.
	WarmupMaxMillis float64
	// ShallowP99Millis and DeepP99Millis split the API's job list p99 by page depth.
	ShallowP99Millis float64
	DeepP99Millis    float64
	// ReconcileMaxTickMillis is the slowest reconcile.
	ReconcileMaxTickMillis float64
	// LoadStart and LoadEnd are the machine's 1-minute load average when the run started and
	// ended, 0 where /proc/loadavg cannot be read: work of other programs shows there.
	LoadStart, LoadEnd float64
}

// MiB is the unit of every MB figure: 2^20 bytes.
const MiB = 1 << 20

func ptr(v float64) *float64 { return &v }

// WriteJSON writes the results to path as one JSON object.
func WriteJSON(path string, r *Results) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// row is one line of the table.
type row struct {
	name   string
	value  *float64
	unit   string
	limit  string
	target string
	// met reports whether the value reaches the target.
	met func(float64) bool
}

// dispatchCodeRate formats the in-process dispatch rate, which the reconcile phase measures.
func dispatchCodeRate(v float64) string {
	if v == 0 {
		return "not measured (the reconcile phase measures it)"
	}
	return fmt.Sprintf("%.0f jobs/s", v)
}

func (r *Results) rows() []row {
	l := r.Limits
	return []row{
		{"dispatch", r.DispatchJobsPerSecond, "jobs/s", fmt.Sprintf("API creates alone: %.0f jobs/s; dispatch code alone: %s", l.CreateJobsPerSecond, dispatchCodeRate(l.DispatchCodeJobsPerSecond)), ">= 1000", func(v float64) bool { return v >= 1000 }},
		{"plugin RPC p50", r.PluginRPCP50Micros, "µs", fmt.Sprintf("bare go-plugin client: %.0f µs", l.RawRPCP50Micros), "< 100", func(v float64) bool { return v < 100 }},
		{"plugin RPC p99", r.PluginRPCP99Micros, "µs", fmt.Sprintf("bare go-plugin client: %.0f µs", l.RawRPCP99Micros), "", nil},
		{"ingest", r.IngestItemsPerSecond, "items/s", fmt.Sprintf("raw COPY: %.0f items/s", l.CopyItemsPerSecond), "", nil},
		{"ingest / raw COPY", r.IngestVsCopyRatio, "", "", ">= 0.70", func(v float64) bool { return v >= 0.7 }},
		{"export JSONL", r.ExportMBPerSecond, "MiB/s", fmt.Sprintf("raw COPY TO: %.1f MiB/s", l.CopyExportMBPerSecond), "", nil},
		{"export / raw COPY", r.ExportVsCopyRatio, "", "", ">= 0.70", func(v float64) bool { return v >= 0.7 }},
		{"export peak RSS", r.ExportPeakRSSMB, "MiB", fmt.Sprintf("idle API process: %.1f MiB", l.IdleRSSMB), "< 100", func(v float64) bool { return v < 100 }},
		{"job list p99", r.JobListP99Millis, "ms", fmt.Sprintf("store calls alone: %.1f ms; GET / alone: %.1f ms; pages 1-10: %.1f ms, any page: %.1f ms; slowest untimed first request: %.1f ms", l.StoreListP99Millis, l.HealthP99Millis, l.ShallowP99Millis, l.DeepP99Millis, l.WarmupMaxMillis), "< 10", func(v float64) bool { return v < 10 }},
		{"job list rate", r.JobListRequestsPerSecond, "req/s", fmt.Sprintf("store calls alone: %.0f req/s; GET / alone: %.0f req/s", l.StoreListRequestsPerSecond, l.HealthRequestsPerSecond), "", nil},
		{"reconcile engine calls", r.ReconcileEngineCallsPerTick, "per tick", "", "1", func(v float64) bool { return v == 1 }},
		{"reconcile tick (median)", r.ReconcileTickMillis, "ms", fmt.Sprintf("slowest tick: %.0f ms", l.ReconcileMaxTickMillis), "< 1000", func(v float64) bool { return v < 1000 }},
		{"cron lateness p99", r.CronLateP99Millis, "ms", "", "< 5000", func(v float64) bool { return v < 5000 }},
		{"cron duplicates", r.CronDuplicates, "", "", "0", func(v float64) bool { return v == 0 }},
		{"cron missed", r.CronMissed, "", "", "0", func(v float64) bool { return v == 0 }},
	}
}

// WriteTable prints the results as an aligned table with the limits and targets.
func WriteTable(w io.Writer, r *Results) error {
	fmt.Fprintf(w, "cores: %d; load average (1 min) at start: %.1f, at end: %.1f\n", runtime.NumCPU(), r.Limits.LoadStart, r.Limits.LoadEnd)
	sizes, defaults := r.Sizes, DefaultSizes()
	sizes.PhaseTimeout, defaults.PhaseTimeout = 0, 0
	if sizes != defaults {
		fmt.Fprintln(w, "sizes: not the defaults, so the figures do not compare with the targets (-quick sizes only show that every phase runs)")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tvalue\tunit\ttarget\tmet\tmeasured beside it")
	for _, rw := range r.rows() {
		value, met, limit := "not measured", "", ""
		if rw.value != nil {
			value = formatValue(*rw.value)
			limit = rw.limit
			if rw.met != nil {
				met = map[bool]string{true: "yes", false: "NO"}[rw.met(*rw.value)]
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rw.name, value, rw.unit, rw.target, met, limit)
	}
	return tw.Flush()
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v != 0 && math.Abs(v) < 10:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	case math.Abs(v) < 1000:
		// One decimal, so that 99.6 µs does not read as 100 beside a target of < 100.
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or 0 where it cannot be read.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}
