# estela-go server configuration: the nomad engine with project archives in an S3-compatible
# store (MinIO here), as on a Nomad cluster outside any cloud.
#
# NOTE: the nomad engine runs jobs but does not prepare deploys: it neither builds images nor
# unpacks archives, so every deploy uploaded to a server with this file ends in FAILURE, and
# its spiders cannot run. The server has one engine at a time and no other way to build the
# image, so the nomad engine is not usable end to end yet.
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
  # Job launches and deploy preparations that one worker process runs at once. Default 16.
  concurrency = 16
  # Seconds between two comparisons of all active jobs with the engine. Default 10.
  reconcile_seconds = 10
}

# The nomad engine runs each job as a Nomad batch job with one docker task.
engine "nomad" {
  # Pin the plugin binary to a SHA-256 (sha256sum of the file).
  # sha256 = "<64 hex digits>"

  # HTTP API of a Nomad agent. Default: $NOMAD_ADDR, else http://127.0.0.1:4646. TLS settings
  # come from NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY and the other standard
  # variables in the server's environment, which plugins inherit.
  address = "https://nomad.service.consul:4646"

  # ACL token. Default: $NOMAD_TOKEN, else none. Keep it in the environment rather than here.
  # token = env("NOMAD_TOKEN")

  # Namespace of the jobs. Default: $NOMAD_NAMESPACE, else Nomad's "default". A namespace of
  # their own keeps the engine's job listings short.
  namespace = "estela"

  # Region of the jobs. Default: $NOMAD_REGION, else the agent's.
  # region = "global"

  # Datacenters the jobs may run in; "*" means all. Default ["dc1"].
  datacenters = ["dc1"]

  # Meta added to every job. Keys use letters, digits, '_' and '-', and may not start with
  # estela_go_. Default none.
  # meta = { team = "scraping" }

  # The jobs' kill_timeout: time between the stop signal and the kill, as a Go duration.
  # Default "10s".
  stop_grace = "10s"

  # User of the task ("1000", "1000:1000"). Default "1000", the user of
  # deploy/docker/Dockerfile.job.
  run_as_user = "1000"

  # Clock of one core of the job nodes, in MHz, to turn CPU millis into Nomad's MHz. Default
  # 2000, an estimate: set it to the cpu.frequency that `nomad node status -verbose` shows.
  mhz_per_core = 2000
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
