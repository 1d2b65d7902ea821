-- A deploy token lets an image build download its deploy's archive and report its result, and
-- nothing else. build_started marks a deploy whose image is being built by the engine, so the
-- reconcile does not start a second build.
ALTER TABLE tokens ADD COLUMN deploy_id bigint REFERENCES deploys (did) ON DELETE CASCADE;
ALTER TABLE tokens DROP CONSTRAINT tokens_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_one_owner CHECK (num_nonnulls(user_id, job_id, deploy_id) = 1);
CREATE INDEX tokens_deploy_idx ON tokens (deploy_id) WHERE deploy_id IS NOT NULL;

ALTER TABLE deploys ADD COLUMN build_started timestamptz;
