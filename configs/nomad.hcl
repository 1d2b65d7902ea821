# estela-go server configuration: the nomad engine with project archives in an S3-compatible
# store (MinIO here), as on a Nomad cluster outside any cloud.
#
# NOTE: the nomad engine plugin is not written yet: plugins/engine/nomad holds only its go.mod,
# so `make build` makes no estela-engine-nomad and a server started with this file stops with
# 'engine plugin "nomad" not found'. The engine block below is empty because the plugin's
# settings do not exist yet; the rest of the file works as shown.
#
# Every value can use env("NAME", "default"). ESTELA_LISTEN, ESTELA_API_HOST, DATABASE_URL,
# REDIS_URL and ESTELA_PLUGIN_DIR override the matching settings when set.

# Address of the HTTP API. Default 127.0.0.1:8000; the API must be reachable from the Nomad
# clients that run jobs.
listen = "0.0.0.0:8000"

# Base URL that jobs use to call the API back, reachable from every Nomad client, for example
# through a Consul service name. Default http://<listen>.
api_host = "http://estela-api.service.consul:8000"

# Postgres and Redis come from DATABASE_URL and REDIS_URL. Jobs receive REDIS_URL too, so its
# host must resolve on the Nomad clients.

# Folders searched for the plugin binaries. Default ["bin/plugins"].
plugin_dirs = ["/usr/lib/estela/plugins"]

# Browser origins allowed to call the API (estela-web). Default none.
cors_origins = []

worker {
  # Tasks (job launches, deploy builds, reconciles) run at once by one worker. Default 16.
  concurrency = 16
  # Seconds between two comparisons of all active jobs with the engine. Default 10.
  reconcile_seconds = 10
}

# Where image-building engines push deploys, as <registry>/<repository>:estela_<pid>_<did>.
# Whether the nomad engine builds images is not decided yet.
# images {
#   registry   = "registry.service.consul:5000"
#   repository = "estela-projects"
# }

engine "nomad" {
  # TODO: document the settings once plugins/engine/nomad has them.
}

# The aws credentials plugin works with any S3-compatible store through endpoint. configs/aws.hcl
# documents every setting. The access key comes from AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY in the server's environment, which plugins inherit.
credentials "aws" {
  # Bucket of the archives. Required; the bucket must exist.
  bucket = "estela-projects"
  # URL of the S3-compatible store. With an endpoint and no region, the region is us-east-1.
  endpoint = "http://minio.service.consul:9000"
  # Path-style addressing (endpoint/bucket/key), which MinIO expects. Default true when
  # endpoint is set.
  use_path_style = true
}
