-- Cron jobs fire from the workers' scheduler. It claims each due run by moving next_run forward
-- in the transaction that creates the run's job, so a run is created once however many workers
-- fire at the same time. next_run is NULL for a cron job whose schedule can no longer be read.

ALTER TABLE cronjobs ADD CONSTRAINT cronjobs_status_check CHECK (status IN ('ACTIVE', 'DISABLED'));
ALTER TABLE cronjobs ADD CONSTRAINT cronjobs_data_status_check CHECK (data_status IN ('PERSISTENT', 'PENDING'));
ALTER TABLE cronjobs ADD CONSTRAINT cronjobs_data_expiry_days_check CHECK (data_status <> 'PENDING' OR data_expiry_days >= 1);

-- The scheduler's scan for due cron jobs; disabled and deleted ones are never due.
CREATE INDEX cronjobs_due_idx ON cronjobs (next_run) WHERE status = 'ACTIVE' AND NOT deleted;

-- The shared data collection "scj<cjid>.<sid>.<pid>" of a job whose cron job had
-- unique_collection set when the job was created. Jobs without a row here keep their data
-- under their own key "<jid>.<sid>.<pid>".
CREATE TABLE job_collections (
	job_id      bigint PRIMARY KEY REFERENCES jobs (jid) ON DELETE CASCADE,
	collection  text NOT NULL
);
CREATE INDEX job_collections_collection_idx ON job_collections (collection);
