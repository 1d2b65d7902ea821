-- A page of a spider's jobs, by job number, from a function whose plan cannot depend on the
-- table's statistics, as spider_job_count's cannot (migration 0008).
--
-- The job list is a prepared statement with a generic plan, made once per connection. When it
-- was made while the statistics showed few jobs, Postgres read the page through the index on
-- (spider, created) and sorted every job of the spider, calling spider_job_count once per job,
-- and each connection kept that plan until the next ANALYZE: 9 ms for a page of a 500-job
-- spider, where the index on (spider, number) reads only the page's entries.
CREATE FUNCTION spider_jobs_page(spider bigint, top bigint, n integer) RETURNS SETOF jobs LANGUAGE plpgsql STABLE
	SET plan_cache_mode = force_generic_plan
	SET enable_sort = off
	SET enable_seqscan = off
	SET enable_bitmapscan = off
AS $$
BEGIN
	RETURN QUERY SELECT * FROM jobs WHERE spider_id = spider AND seq <= top ORDER BY seq DESC LIMIT n;
END
$$;
