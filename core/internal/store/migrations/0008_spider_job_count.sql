-- A spider's highest job number, read by the numbering trigger and by the job list, comes
-- from one function whose plan cannot depend on the table's statistics.
--
-- Before this, the trigger ran max(seq) with a plan made for each call. When the statistics
-- said the spider had no jobs (a spider created since the last ANALYZE), Postgres aggregated
-- every index entry of the spider instead of reading the last one, so each insert read all the
-- jobs inserted before it: a 1,000,000-job insert into a new spider ran for over 15 minutes.
--
-- The function asks for the last entry of jobs_spider_seq_idx. With sorts and sequential scans
-- priced out, that backward index scan is the only plan left, so the plan is made once per
-- connection and kept, whatever the statistics said at that moment.
CREATE FUNCTION spider_job_count(spider bigint) RETURNS bigint LANGUAGE plpgsql STABLE
	SET plan_cache_mode = force_generic_plan
	SET enable_sort = off
	SET enable_seqscan = off
	SET enable_bitmapscan = off
AS $$
BEGIN
	RETURN coalesce((SELECT seq FROM jobs WHERE spider_id = spider ORDER BY seq DESC LIMIT 1), 0);
END
$$;

CREATE OR REPLACE FUNCTION jobs_number_in_spider() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM spiders WHERE sid = NEW.spider_id FOR NO KEY UPDATE;
	NEW.seq := spider_job_count(NEW.spider_id) + 1;
	RETURN NEW;
END
$$;
-- CREATE OR REPLACE drops the plan_cache_mode setting of 0006: the lock statement plans as usual.
