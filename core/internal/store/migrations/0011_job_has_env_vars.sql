-- Whether a job may have environment variables of its own. The job list reads a job's
-- variables with a subquery per listed job, which took about a quarter of the list statement's
-- time for pages of jobs without variables, as most are. The list now runs it only where this
-- column is true.
--
-- A trigger sets it whenever a variable is given to a job, whichever statement inserts it. It
-- is not cleared when variables are deleted: a job whose column is true and that has no
-- variables lists an empty array, as before.
ALTER TABLE jobs ADD COLUMN has_env_vars boolean NOT NULL DEFAULT false;

UPDATE jobs SET has_env_vars = true WHERE jid IN (SELECT job_id FROM env_vars WHERE job_id IS NOT NULL);

CREATE FUNCTION jobs_mark_env_vars() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jobs SET has_env_vars = true WHERE jid = NEW.job_id AND NOT has_env_vars;
	RETURN NULL;
END
$$;

CREATE TRIGGER env_vars_mark_job AFTER INSERT OR UPDATE OF job_id ON env_vars
	FOR EACH ROW WHEN (NEW.job_id IS NOT NULL) EXECUTE FUNCTION jobs_mark_env_vars();
