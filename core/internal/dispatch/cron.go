package dispatch

import (
	"context"

	"github.com/estela-go/estela-go/core/internal/scheduler"
)

// FireCron creates and enqueues a job for every cron job that is due. Every worker calls it
// every second, and concurrent calls split the due cron jobs without creating a run twice.
func (s *Service) FireCron(ctx context.Context) error {
	fired, err := scheduler.New(s.store, s.queue, scheduler.Options{}, s.log).Fire(ctx)
	if fired > 0 {
		s.log.Info("cron jobs fired", "jobs", fired)
	}
	return err
}
