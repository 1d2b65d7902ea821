-- Every job gets its number within its spider, 1, 2, 3 and so on without gaps, so that a
-- spider's job list finds its count and any page with an index lookup instead of counting and
-- skipping rows. Jobs are never deleted one by one (only with their spider or project), so
-- the numbers stay dense and the highest one is the spider's job count.
ALTER TABLE jobs ADD COLUMN seq bigint;
UPDATE jobs j SET seq = n.seq
FROM (SELECT jid, row_number() OVER (PARTITION BY spider_id ORDER BY jid) AS seq FROM jobs) n
WHERE n.jid = j.jid;
ALTER TABLE jobs ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX jobs_spider_seq_idx ON jobs (spider_id, seq);
DROP INDEX jobs_spider_idx;

-- The trigger numbers each new job under a lock on its spider's row, taken with FOR NO KEY
-- UPDATE so that it does not wait for the foreign key checks of other inserts. Inserts into
-- one spider therefore run one at a time from this point to their commit; a statement that
-- inserts jobs of several spiders must insert them ordered by spider, or two such statements
-- can deadlock. The unique index turns any numbering mistake into an error.
CREATE FUNCTION jobs_number_in_spider() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM spiders WHERE sid = NEW.spider_id FOR NO KEY UPDATE;
	SELECT coalesce(max(seq), 0) + 1 INTO NEW.seq FROM jobs WHERE spider_id = NEW.spider_id;
	RETURN NEW;
END
$$;
-- A cached generic plan would keep the sequential scan chosen while jobs was small, and make
-- every insert scan a large table; a plan per call uses the index once the table grows.
ALTER FUNCTION jobs_number_in_spider() SET plan_cache_mode = force_custom_plan;
CREATE TRIGGER jobs_number_in_spider BEFORE INSERT ON jobs
	FOR EACH ROW EXECUTE FUNCTION jobs_number_in_spider();
