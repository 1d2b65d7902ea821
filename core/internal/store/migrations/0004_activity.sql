-- Activity feed and notifications, proxy providers, the metered usage ledger, and what the
-- stats routes need to aggregate job stats in the database.

-- One row per action on a project. user_id is NULL for actions of the platform itself and
-- after the acting user was deleted, so the project keeps its history.
CREATE TABLE activities (
	aid          bigserial PRIMARY KEY,
	user_id      bigint REFERENCES users (id) ON DELETE SET NULL,
	project_id   uuid NOT NULL REFERENCES projects (pid) ON DELETE CASCADE,
	description  text NOT NULL CHECK (description <> ''),
	created      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_project_idx ON activities (project_id, aid DESC);

-- One row per activity and per project member other than the actor.
CREATE TABLE notifications (
	nid          bigserial PRIMARY KEY,
	activity_id  bigint NOT NULL REFERENCES activities (aid) ON DELETE CASCADE,
	user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	seen         boolean NOT NULL DEFAULT false
);
CREATE INDEX notifications_user_idx ON notifications (user_id, nid DESC);
CREATE INDEX notifications_activity_idx ON notifications (activity_id);

-- HTTP proxies that members attach to a project or spider as ESTELA_PROXY_* variables. The
-- credentials never leave the server except as masked variables of the jobs that use them.
CREATE TABLE proxy_providers (
	proxyid      bigserial PRIMARY KEY,
	name         text NOT NULL CHECK (name <> ''),
	description  text NOT NULL DEFAULT '',
	username     text NOT NULL DEFAULT '',
	password     text NOT NULL DEFAULT '',
	host         text NOT NULL DEFAULT '',
	port         text NOT NULL DEFAULT ''
);

-- Append-only ledger of metered usage facts. A reporter retries with the same idempotency_key,
-- which is unique across every project, so a fact is never counted twice.
CREATE TABLE metered_usage_records (
	id                 uuid PRIMARY KEY,
	recorded_at        timestamptz NOT NULL DEFAULT now(),
	idempotency_key    text NOT NULL UNIQUE,
	project_id         uuid NOT NULL REFERENCES projects (pid) ON DELETE CASCADE,
	interval_start     timestamptz NOT NULL,
	interval_end       timestamptz NOT NULL,
	kind               text NOT NULL CHECK (kind IN ('JOB_CLOSE', 'DATA_DELETE', 'ADJUSTMENT', 'DELTA_SLICE')),
	source_ref         text NOT NULL DEFAULT '',
	adjustment_reason  text NOT NULL DEFAULT ''
		CHECK (adjustment_reason IN ('', 'RECONCILE_SCRAPY_FINAL', 'RECONCILE_STORAGE', 'MANUAL')),
	resource_kind      text NOT NULL,
	resource_id        text NOT NULL,
	reporter           text NOT NULL DEFAULT '',
	metrics            jsonb NOT NULL,
	CHECK (interval_end > interval_start),
	CHECK (kind <> 'ADJUSTMENT' OR adjustment_reason <> '')
);
CREATE INDEX metered_usage_project_interval_idx ON metered_usage_records (project_id, interval_start);
CREATE INDEX metered_usage_project_recorded_idx ON metered_usage_records (project_id, recorded_at);
CREATE INDEX metered_usage_resource_idx ON metered_usage_records (project_id, resource_kind, resource_id, interval_start);

-- The stats routes select jobs by creation time within a project or a spider.
CREATE INDEX jobs_project_created_idx ON jobs (project_id, created);
CREATE INDEX jobs_spider_created_idx ON jobs (spider_id, created);

-- job_stats_number returns the value at path in a job's stats document as a number, or NULL
-- when it is missing, not a number or a numeric string, or too large for the sums of the
-- stats routes. Scrapy writes its counters as JSON numbers.
CREATE FUNCTION job_stats_number(stats json, path text[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
		WHEN json_typeof(stats #> path) IN ('number', 'string')
			AND (stats #>> path) ~ '^\s*-?[0-9]{1,18}(\.[0-9]+)?([eE][-+]?[0-9]{1,2})?\s*$'
		THEN (stats #>> path)::double precision
	END
$$;
