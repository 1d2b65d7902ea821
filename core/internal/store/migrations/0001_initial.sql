-- Initial schema. Migrations are append-only: never edit a released file, add a new one.

CREATE TABLE users (
	id             bigserial PRIMARY KEY,
	username       text NOT NULL UNIQUE,
	email          text NOT NULL DEFAULT '',
	password_hash  text NOT NULL,
	is_active      boolean NOT NULL DEFAULT true,
	is_staff       boolean NOT NULL DEFAULT false,
	is_superuser   boolean NOT NULL DEFAULT false,
	memory_quota   integer NOT NULL DEFAULT 6144,
	last_login     timestamptz,
	date_joined    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
	pid               uuid PRIMARY KEY,
	name              text NOT NULL,
	category          text NOT NULL DEFAULT 'OTHER_CATEGORY',
	framework         text NOT NULL DEFAULT 'SCRAPY',
	data_status       text NOT NULL DEFAULT 'PERSISTENT',
	data_expiry_days  integer NOT NULL DEFAULT 1,
	deleted           boolean NOT NULL DEFAULT false,
	created           timestamptz NOT NULL DEFAULT now(),
	last_modified     timestamptz
);

CREATE TABLE permissions (
	id          bigserial PRIMARY KEY,
	user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id  uuid NOT NULL REFERENCES projects (pid) ON DELETE CASCADE,
	role        text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER')),
	UNIQUE (project_id, user_id)
);
CREATE INDEX permissions_user_idx ON permissions (user_id);

CREATE TABLE spiders (
	sid               bigserial PRIMARY KEY,
	project_id        uuid NOT NULL REFERENCES projects (pid) ON DELETE CASCADE,
	name              text NOT NULL,
	data_status       text NOT NULL DEFAULT 'PERSISTENT',
	data_expiry_days  integer NOT NULL DEFAULT 1,
	deleted           boolean NOT NULL DEFAULT false,
	created           timestamptz NOT NULL DEFAULT now(),
	UNIQUE (project_id, name)
);

CREATE TABLE deploys (
	did           bigserial PRIMARY KEY,
	project_id    uuid NOT NULL REFERENCES projects (pid) ON DELETE CASCADE,
	user_id       bigint REFERENCES users (id) ON DELETE SET NULL,
	status        text NOT NULL DEFAULT 'BUILDING',
	artifact_ref  text NOT NULL DEFAULT '',
	error_reason  text NOT NULL DEFAULT '',
	attempts      integer NOT NULL DEFAULT 0,
	created       timestamptz NOT NULL DEFAULT now(),
	finished      timestamptz
);
CREATE INDEX deploys_project_idx ON deploys (project_id, did DESC);

CREATE TABLE deploy_spiders (
	deploy_id  bigint NOT NULL REFERENCES deploys (did) ON DELETE CASCADE,
	spider_id  bigint NOT NULL REFERENCES spiders (sid) ON DELETE CASCADE,
	PRIMARY KEY (deploy_id, spider_id)
);
CREATE INDEX deploy_spiders_spider_idx ON deploy_spiders (spider_id);

CREATE TABLE cronjobs (
	cjid               bigserial PRIMARY KEY,
	spider_id          bigint NOT NULL REFERENCES spiders (sid) ON DELETE CASCADE,
	schedule           text NOT NULL,
	status             text NOT NULL DEFAULT 'ACTIVE',
	unique_collection  boolean NOT NULL DEFAULT false,
	data_status        text NOT NULL DEFAULT 'PERSISTENT',
	data_expiry_days   integer,
	resource_tier      text NOT NULL DEFAULT 'LARGE',
	args               jsonb NOT NULL DEFAULT '[]',
	tags               text[] NOT NULL DEFAULT '{}',
	deleted            boolean NOT NULL DEFAULT false,
	created            timestamptz NOT NULL DEFAULT now(),
	next_run           timestamptz
);
CREATE INDEX cronjobs_spider_idx ON cronjobs (spider_id, cjid DESC);

CREATE TABLE jobs (
	jid                   bigserial PRIMARY KEY,
	project_id            uuid NOT NULL REFERENCES projects (pid) ON DELETE CASCADE,
	spider_id             bigint NOT NULL REFERENCES spiders (sid) ON DELETE CASCADE,
	cronjob_id            bigint REFERENCES cronjobs (cjid) ON DELETE SET NULL,
	deploy_id             bigint REFERENCES deploys (did) ON DELETE SET NULL,
	status                text NOT NULL DEFAULT 'IN_QUEUE',
	data_status           text NOT NULL DEFAULT 'PERSISTENT',
	data_expiry_days      integer,
	resource_tier         text NOT NULL DEFAULT 'LARGE',
	args                  jsonb NOT NULL DEFAULT '[]',
	tags                  text[] NOT NULL DEFAULT '{}',
	lifespan_us           bigint NOT NULL DEFAULT 0,
	total_response_bytes  bigint NOT NULL DEFAULT 0,
	item_count            bigint NOT NULL DEFAULT 0,
	request_count         bigint NOT NULL DEFAULT 0,
	proxy_usage_data      jsonb NOT NULL DEFAULT '{}',
	error_reason          text NOT NULL DEFAULT '',
	dispatch_attempts     integer NOT NULL DEFAULT 0,
	dispatched_at         timestamptz,
	created               timestamptz NOT NULL DEFAULT now(),
	status_changed        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_spider_idx ON jobs (spider_id, jid DESC);
CREATE INDEX jobs_project_idx ON jobs (project_id, jid DESC);
CREATE INDEX jobs_active_idx ON jobs (status, jid) WHERE status IN ('IN_QUEUE', 'WAITING', 'RUNNING');
CREATE INDEX jobs_tags_idx ON jobs USING gin (tags);

-- Environment variables of a project, a spider, a job or a cron job: exactly one owner is set.
CREATE TABLE env_vars (
	evid        bigserial PRIMARY KEY,
	project_id  uuid REFERENCES projects (pid) ON DELETE CASCADE,
	spider_id   bigint REFERENCES spiders (sid) ON DELETE CASCADE,
	job_id      bigint REFERENCES jobs (jid) ON DELETE CASCADE,
	cronjob_id  bigint REFERENCES cronjobs (cjid) ON DELETE CASCADE,
	name        text NOT NULL,
	value       text NOT NULL,
	masked      boolean NOT NULL DEFAULT false,
	CHECK (num_nonnulls(project_id, spider_id, job_id, cronjob_id) = 1)
);
CREATE INDEX env_vars_project_idx ON env_vars (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX env_vars_spider_idx ON env_vars (spider_id) WHERE spider_id IS NOT NULL;
CREATE INDEX env_vars_job_idx ON env_vars (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX env_vars_cronjob_idx ON env_vars (cronjob_id) WHERE cronjob_id IS NOT NULL;

-- API tokens. Only a SHA-256 of the key is kept. A user token acts for its user; a job token
-- may only report on its one job.
CREATE TABLE tokens (
	id        bigserial PRIMARY KEY,
	key_hash  bytea NOT NULL UNIQUE,
	user_id   bigint REFERENCES users (id) ON DELETE CASCADE,
	job_id    bigint REFERENCES jobs (jid) ON DELETE CASCADE,
	created   timestamptz NOT NULL DEFAULT now(),
	CHECK (num_nonnulls(user_id, job_id) = 1)
);
CREATE INDEX tokens_user_idx ON tokens (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX tokens_job_idx ON tokens (job_id) WHERE job_id IS NOT NULL;

-- Job data: items, requests and logs, one row each, read in id order. The json type (not
-- jsonb) keeps each record as the job sent it, field order included, and is cheaper to COPY.
CREATE TABLE job_data (
	id      bigserial PRIMARY KEY,
	job_id  bigint NOT NULL REFERENCES jobs (jid) ON DELETE CASCADE,
	kind    smallint NOT NULL,
	data    json NOT NULL
);
CREATE INDEX job_data_job_idx ON job_data (job_id, kind, id);

-- One row per ingested batch, so that a batch sent again is recognised and not stored twice.
CREATE TABLE job_data_batches (
	job_id    bigint NOT NULL REFERENCES jobs (jid) ON DELETE CASCADE,
	batch_id  text NOT NULL,
	kind      smallint NOT NULL,
	records   integer NOT NULL,
	created   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job_id, batch_id)
);

CREATE TABLE job_stats (
	job_id   bigint PRIMARY KEY REFERENCES jobs (jid) ON DELETE CASCADE,
	stats    json NOT NULL,
	created  timestamptz NOT NULL DEFAULT now()
);
