# estela-go server configuration: the kubernetes engine with AWS credentials (S3 and ECR), for
# api and worker pods in a cluster such as EKS. deploy/kubernetes/ runs the server with a
# shorter copy of this file.
#
# Every value can use env("NAME", "default"). ESTELA_LISTEN, ESTELA_API_HOST, DATABASE_URL,
# REDIS_URL and ESTELA_PLUGIN_DIR override the matching settings when set.

# Address of the HTTP API. Default 127.0.0.1:8000; in a pod, listen on every interface.
listen = "0.0.0.0:8000"

# Base URL that job and build pods use to call the API back: status reports, data, deploy
# archives and build results. It must be reachable from the jobs namespace, so use the API
# Service's cluster DNS name. Default http://<listen>, which pods cannot reach.
api_host = "http://estela-api.estela.svc.cluster.local:8000"

# database_url and redis_url: set them through DATABASE_URL and REDIS_URL, which keeps the
# passwords out of this file. Job pods receive REDIS_URL too (for live stats), so its host
# must resolve from the jobs namespace.
# database_url = "postgres://estela:change-me@postgres.example.internal:5432/estela?sslmode=require"
# redis_url    = "redis://:change-me@redis.example.internal:6379/0"

# Postgres connections of each api and worker process for statements and transactions. Requests
# beyond it wait for a connection in order, which keeps latency steadier than letting them share
# Postgres's cores. Each process also opens up to 16 connections for downloads, so Postgres's
# max_connections must cover (database_pool_size + 16) times the number of processes. Default 0:
# twice the CPU cores the process may use, between 4 and 20.
database_pool_size = 0

# Prefix of every Redis key (queue and live stats), so that several installations can share
# one Redis. Default "estela".
redis_namespace = "estela"

# Folders searched, in order, for estela-engine-<name> and estela-credentials-<name>.
# Default ["bin/plugins"]; the server image keeps the plugins in /usr/lib/estela/plugins.
plugin_dirs = ["/usr/lib/estela/plugins"]

# Browser origins allowed to call the API, such as the address of estela-web. Default none.
cors_origins = ["https://estela.example.com"]

# Largest accepted project archive, in bytes. Default 104857600 (100 MiB).
max_upload_bytes = 104857600

# Largest data batch a job may send in one ingest request, in bytes. Default 33554432 (32 MiB).
max_ingest_bytes = 33554432

worker {
  # Job launches and deploy preparations that one worker process runs at once. Default 16.
  concurrency = 16
  # Seconds between two comparisons of all active jobs with the engine. Default 10.
  reconcile_seconds = 10
  # Seconds a dispatched job may be missing from the engine before it is dispatched again, and
  # a finished job may stay without its final report before it ends in ERROR. Default 60.
  lost_job_grace_seconds = 60
  # Launches of one job that may fail, or whose job the engine loses, before the job ends in
  # ERROR. While the engine is down, jobs wait and no launch counts. Default 5.
  max_dispatch_attempts = 5
}

# Where deploys are built to: each deploy becomes <registry>/<repository>:estela_<pid>_<did>.
images {
  # Registry host (and port). Required by engines that build images; no default. The ECR host
  # below matches the ecr block of the credentials, which then supplies the push login.
  registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
  # Repository in that registry; on ECR it must exist. Default "estela-projects".
  repository = "estela-projects"
  # Minutes a deploy may stay BUILDING before it fails. Default 60. Keep it above the engine's
  # build.timeout so that the engine's own deadline ends the build first.
  build_timeout_minutes = 60
}

# The kubernetes engine runs each job as a batch/v1 Job and builds deploys with Kaniko, in one
# namespace. Its service account needs the Role in deploy/kubernetes/rbac.yaml.
engine "kubernetes" {
  # Pin the plugin binary to a SHA-256 (sha256sum of the file); another binary is not started.
  # sha256 = "<64 hex digits>"
  # GOMAXPROCS of the plugin process. Default 1; 0 sets none (Go's default, one per
  # CPU core, unless the server's environment sets GOMAXPROCS). Raise it if the
  # plugin's CPU use stays near one core, as watching a very busy namespace can make it.
  # gomaxprocs = 1

  # Namespace of the job and build Jobs. Default "default".
  namespace = "estela-jobs"

  # Cluster access. Both empty (the default) means the in-cluster configuration of the pod,
  # else $KUBECONFIG, else ~/.kube/config. kubeconfig is a file path, context a context name
  # in it.
  # kubeconfig = "/etc/estela/kubeconfig"
  # context    = "production"

  # Secret of type kubernetes.io/dockerconfigjson in the namespace that pods pull images
  # with. Default "regcred"; "" adds none. ECR logins expire after 12 hours, so on EKS leave it
  # empty and let the nodes pull with their IAM role. Build pods also get a short-lived login
  # of their own from the credentials plugin.
  image_pull_secret = ""

  # Service account of job and build pods. Default "" (the namespace's default account). Job
  # pods run project code, so give them an account without API access or mounted token.
  service_account = "estela-job"

  # Node labels that job and build pods must match. Default none.
  # node_selector = { "estela.io/role" = "jobs" }

  # Labels added to every Job and pod. Default none; app.kubernetes.io/managed-by is reserved.
  # labels = { team = "scraping" }

  # Seconds a finished Job stays before Kubernetes deletes it. Default 86400 (one day).
  ttl_seconds_after_finished = 86400

  # Retries of a failed job pod before the Job fails. Default 0.
  backoff_limit = 0

  # Longest run of a job, as a Go duration ("6h"); at least "1s". Default none.
  # max_runtime = "24h"

  # Pull policy of job containers: Always, IfNotPresent or Never. Default Always. Each deploy
  # has its own tag, so IfNotPresent saves pulls.
  image_pull_policy = "IfNotPresent"

  # User id of job and build containers (runAsNonRoot); must be above 0. Default 1000, the
  # user of deploy/docker/Dockerfile.job. Kaniko alone runs as root.
  run_as_user = 1000

  build = {
    # Image of the Kaniko executor. Default gcr.io/kaniko-project/executor:v1.23.2.
    kaniko_image = "gcr.io/kaniko-project/executor:v1.23.2"
    # Image with sh, curl and unzip that downloads the project archive from the API.
    # Default curlimages/curl:8.10.1.
    downloader_image = "curlimages/curl:8.10.1"
    # Deadline of a build Job, as a Go duration. Default "30m".
    timeout = "30m"
    # Resources of the Kaniko container, as in a pod manifest. Default requests cpu 1,
    # memory 1Gi and limits cpu 2, memory 2Gi.
    resources = {
      requests = { cpu = "1", memory = "1Gi" }
      limits   = { cpu = "2", memory = "2Gi" }
    }
    # Extra Kaniko flags, for example "--insecure" for a registry served over plain HTTP.
    # Default none.
    kaniko_args = []
  }
}

# The aws credentials plugin keeps project archives in S3 and logs build pods in to ECR.
# configs/aws.hcl documents every setting. AWS credentials come from the standard chain: IAM
# roles for service accounts or EKS Pod Identity, else AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY in the server's environment.
credentials "aws" {
  bucket = "estela-projects-archives"
  region = "eu-west-1"
  ecr    = {}
}
