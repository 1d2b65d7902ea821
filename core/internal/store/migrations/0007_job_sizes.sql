-- The size of a job's stored data and its peak memory, shown as storage_size and peak_memory.
-- Each batch records the JSON bytes it stored, so deleting a kind of data deletes its size with
-- its batches. The peak memory comes from the final stats the job sends.
ALTER TABLE job_data_batches ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN peak_memory_bytes bigint;
