# estela-go server configuration: the docker engine with local credentials, for one Docker
# host. Each deploy is built into an image by the Docker daemon and each job runs as a
# container. deploy/docker/compose.docker-engine.yaml runs the server this way.
#
# Every value can use env("NAME", "default"). ESTELA_LISTEN, ESTELA_API_HOST, DATABASE_URL,
# REDIS_URL and ESTELA_PLUGIN_DIR override the matching settings when set.

# Address of the HTTP API. Default 127.0.0.1:8000.
listen = "127.0.0.1:8000"

# Base URL that job and build containers use to call the API back. Containers do not reach the
# host's loopback: with the server in compose, use its service name on the shared network
# (http://estela:8000, which compose.docker-engine.yaml sets through ESTELA_API_HOST). With the
# server on the host, listen on an address of the Docker bridge and use that. Default
# http://<listen>.
api_host = "http://estela:8000"

# Postgres and Redis come from DATABASE_URL and REDIS_URL. Job containers receive REDIS_URL
# for live stats, so its host must resolve on the network below.

# Folders searched for the plugin binaries. Default ["bin/plugins"].
plugin_dirs = ["bin/plugins"]

# Browser origins allowed to call the API (estela-web). Default none.
cors_origins = []

worker {
  # Job launches and deploy preparations that one worker process runs at once. Default 16.
  concurrency = 16
  # Seconds between two comparisons of all active jobs with the engine. Default 10.
  reconcile_seconds = 10
}

# Deploys become <registry>/<repository>:estela_<pid>_<did>. The registry is required, even
# with push = false below, where it only names the image in the daemon.
images {
  registry   = env("ESTELA_REGISTRY", "localhost:5000")
  repository = "estela-projects"
  # Minutes a deploy may stay BUILDING before it fails. Default 60; keep it above the
  # engine's build_timeout.
  build_timeout_minutes = 60
}

engine "docker" {
  # Pin the plugin binary to a SHA-256 (sha256sum of the file).
  # sha256 = "<64 hex digits>"

  # Docker daemon address: unix:///var/run/docker.sock, tcp://host:2376, http://, https:// or
  # npipe://. Default: $DOCKER_HOST, else the platform's default socket. For TLS, set
  # DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH in the server's environment.
  # host = "unix:///var/run/docker.sock"

  # Engine API version such as "1.47". Default "": negotiated with the daemon.
  # api_version = ""

  # Network that job and build containers join. Default "": the daemon's default bridge.
  # "estela" is the network of deploy/docker/compose.yaml.
  network = "estela"

  # Labels added to every container. Default none; keys starting with io.estela-go. are
  # reserved.
  # labels = { team = "scraping" }

  # How long a stopped job's container gets between SIGTERM and SIGKILL, as a Go duration.
  # Default "10s".
  stop_grace = "10s"

  # When a job's image is pulled before its container is created: "always", "missing" (only
  # when the daemon lacks it) or "never". Default "missing".
  pull = "missing"

  # User of job and build-report containers, as for docker run --user ("1000", "1000:1000").
  # Default "1000", the user of deploy/docker/Dockerfile.job.
  run_as_user = "1000"

  # Push each built image to the registry. Default true. false keeps images in this daemon
  # only, which is enough while jobs run on the same daemon.
  push = false

  # Longest image build, as a Go duration. Default "30m".
  build_timeout = "30m"
}

# The local credentials plugin keeps project archives on this machine's disk.
credentials "local" {
  # Folder of the archives (under projects/). Required; created when missing.
  data_dir = "${env("ESTELA_DATA_DIR", ".estela")}/archives"

  # Login that image builds push with. Without it, builds push with no login. All three
  # values are required in this object.
  # registry = {
  #   server   = "registry.example.com"
  #   username = "estela"
  #   password = env("ESTELA_REGISTRY_PASSWORD")
  # }
}
