-- The size of a job's stored data and its peak memory, shown as storage_size and peak_memory.
-- Each batch records the JSON bytes it stored, and the job keeps their sum, updated by the
-- statement that records a batch, so that a job list reads it without summing batches.
-- Deleting a kind of data subtracts its batches' bytes. The peak memory comes from the final
-- stats the job sends.
ALTER TABLE job_data_batches ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN storage_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN peak_memory_bytes bigint;
