package bench

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Sizes are the amounts of work of each phase. The defaults take about 3 minutes on a 2-core
// machine, and QuickSizes well under a minute.
type Sizes struct {
	// DispatchJobs are created through the API and launched on the noop engine.
	DispatchJobs int `json:"dispatch_jobs"`
	// DispatchClients send the dispatch phase's job creations.
	DispatchClients int `json:"dispatch_clients"`
	// RPCCalls are timed GetJob calls to the noop plugin.
	RPCCalls int `json:"rpc_calls"`
	// IngestItems are sent in each ingest round, IngestItemBytes long each, in batches of
	// IngestBatchItems, by IngestSenders concurrent senders.
	IngestItems      int `json:"ingest_items"`
	IngestItemBytes  int `json:"ingest_item_bytes"`
	IngestBatchItems int `json:"ingest_batch_items"`
	IngestSenders    int `json:"ingest_senders"`
	// ExportItems are stored in one job and downloaded as JSONL; they are IngestItemBytes long.
	ExportItems int `json:"export_items"`
	// JobListJobs are stored in one spider; JobListRequests pages of them are requested by
	// JobListClients concurrent clients.
	JobListJobs     int `json:"job_list_jobs"`
	JobListRequests int `json:"job_list_requests"`
	JobListClients  int `json:"job_list_clients"`
	// ReconcileJobs are active on the noop engine during ReconcileTicks timed reconciles.
	ReconcileJobs  int `json:"reconcile_jobs"`
	ReconcileTicks int `json:"reconcile_ticks"`
	// CronJobs are due at the same instant, fired by CronWorkers worker processes.
	CronJobs    int `json:"cron_jobs"`
	CronWorkers int `json:"cron_workers"`
	// Rounds is how often the ingest and export phases alternate the API and raw COPY runs.
	Rounds int `json:"rounds"`
	// PhaseTimeout bounds each timed load loop and each wait.
	PhaseTimeout time.Duration `json:"-"`
}

// DefaultSizes returns the sizes of a full run.
func DefaultSizes() Sizes {
	return Sizes{
		DispatchJobs: 5000, DispatchClients: 8, RPCCalls: 20000,
		IngestItems: 200000, IngestItemBytes: 1024, IngestBatchItems: 500, IngestSenders: 8,
		ExportItems: 1000000,
		JobListJobs: 1000000, JobListRequests: 20000, JobListClients: 16,
		ReconcileJobs: 10000, ReconcileTicks: 5,
		CronJobs: 10000, CronWorkers: 2,
		Rounds: 2, PhaseTimeout: 3 * time.Minute,
	}
}

// QuickSizes returns tiny sizes that exercise every phase in a few seconds each.
func QuickSizes() Sizes {
	s := DefaultSizes()
	s.DispatchJobs, s.RPCCalls = 100, 300
	s.IngestItems, s.IngestBatchItems = 2000, 100
	s.ExportItems = 5000
	s.JobListJobs, s.JobListRequests = 5000, 200
	s.ReconcileJobs, s.ReconcileTicks = 200, 2
	s.CronJobs = 200
	s.Rounds, s.PhaseTimeout = 1, time.Minute
	return s
}

// RegisterFlags adds one flag per size to fs, with s's values as defaults.
func (s *Sizes) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&s.DispatchJobs, "dispatch-jobs", s.DispatchJobs, "jobs created through the API and launched on the noop engine")
	fs.IntVar(&s.DispatchClients, "clients", s.DispatchClients, "concurrent API clients that create the dispatch phase's jobs")
	fs.IntVar(&s.RPCCalls, "rpc-calls", s.RPCCalls, "timed GetJob calls to the noop plugin")
	fs.IntVar(&s.IngestItems, "ingest-items", s.IngestItems, "items sent in each ingest round")
	fs.IntVar(&s.IngestItemBytes, "item-bytes", s.IngestItemBytes, "length of one item in bytes, for ingest and export")
	fs.IntVar(&s.IngestBatchItems, "batch-items", s.IngestBatchItems, "items per ingest batch")
	fs.IntVar(&s.IngestSenders, "senders", s.IngestSenders, "concurrent ingest senders, each with a job of its own")
	fs.IntVar(&s.ExportItems, "export-items", s.ExportItems, "items of the job downloaded as JSONL")
	fs.IntVar(&s.JobListJobs, "list-jobs", s.JobListJobs, "jobs of the spider whose job list is requested")
	fs.IntVar(&s.JobListRequests, "list-requests", s.JobListRequests, "job list requests, half of them for pages 1 to 10 and half for any page")
	fs.IntVar(&s.JobListClients, "list-clients", s.JobListClients, "concurrent job list clients")
	fs.IntVar(&s.ReconcileJobs, "reconcile-jobs", s.ReconcileJobs, "active jobs on the noop engine during the reconciles")
	fs.IntVar(&s.ReconcileTicks, "reconcile-ticks", s.ReconcileTicks, "timed reconciles")
	fs.IntVar(&s.CronJobs, "cron-jobs", s.CronJobs, "cron jobs due at the same instant")
	fs.IntVar(&s.CronWorkers, "cron-workers", s.CronWorkers, "worker processes that fire the cron jobs")
	fs.IntVar(&s.Rounds, "rounds", s.Rounds, "alternating API and raw COPY runs of the ingest and export phases; the best of each counts")
	fs.DurationVar(&s.PhaseTimeout, "phase-timeout", s.PhaseTimeout, "time limit of each load loop and each wait")
}

// validate returns an error that names every invalid size, always in the same order.
func (s Sizes) validate() error {
	positive := []struct {
		flag  string
		value int
	}{
		{"dispatch-jobs", s.DispatchJobs}, {"clients", s.DispatchClients}, {"rpc-calls", s.RPCCalls},
		{"ingest-items", s.IngestItems}, {"item-bytes", s.IngestItemBytes}, {"batch-items", s.IngestBatchItems},
		{"senders", s.IngestSenders}, {"export-items", s.ExportItems}, {"list-jobs", s.JobListJobs},
		{"list-requests", s.JobListRequests}, {"list-clients", s.JobListClients}, {"reconcile-jobs", s.ReconcileJobs},
		{"reconcile-ticks", s.ReconcileTicks}, {"cron-jobs", s.CronJobs}, {"cron-workers", s.CronWorkers}, {"rounds", s.Rounds},
	}
	var errs []error
	for _, size := range positive {
		if size.value < 1 {
			errs = append(errs, fmt.Errorf("invalid -%s %d: it must be at least 1", size.flag, size.value))
		}
	}
	if s.IngestItemBytes >= 1 && s.IngestItemBytes < minItemBytes {
		errs = append(errs, fmt.Errorf("invalid -item-bytes %d: an item needs at least %d bytes for its fixed fields", s.IngestItemBytes, minItemBytes))
	}
	if s.PhaseTimeout < time.Second {
		errs = append(errs, fmt.Errorf("invalid -phase-timeout %s: it must be at least 1s", s.PhaseTimeout))
	}
	return errors.Join(errs...)
}
