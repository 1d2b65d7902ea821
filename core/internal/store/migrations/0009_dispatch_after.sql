-- Workers launch queued jobs by claiming them from Postgres in batches, oldest first, where each
-- job had a task of its own in Redis. A job whose launch failed goes back to IN_QUEUE with the
-- time before which no worker claims it again, so that failures are retried with a back-off.
-- The claim reads jobs_active_idx, which already covers IN_QUEUE jobs in id order.
ALTER TABLE jobs ADD COLUMN dispatch_after timestamptz;
