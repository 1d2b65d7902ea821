# estela-go server configuration: GCP credentials (project archives in Cloud Storage, image
# pushes to Artifact Registry) with the kubernetes engine, as on GKE. configs/kubernetes.hcl
# documents the engine and the server settings in full.
#
# Every value can use env("NAME", "default"). ESTELA_LISTEN, ESTELA_API_HOST, DATABASE_URL,
# REDIS_URL and ESTELA_PLUGIN_DIR override the matching settings when set.

# Address of the HTTP API, and the URL that job and build pods call it back on.
listen   = "0.0.0.0:8000"
api_host = "http://estela-api.estela.svc.cluster.local:8000"

# Postgres and Redis come from DATABASE_URL and REDIS_URL.

# Folders searched for the plugin binaries. Default ["bin/plugins"].
plugin_dirs = ["/usr/lib/estela/plugins"]

# Browser origins allowed to call the API (estela-web). Default none.
cors_origins = []

# Deploys become <registry>/<repository>:estela_<pid>_<did>. Artifact Registry paths are
# <location>-docker.pkg.dev/<project>/<repository>/<image>: registry must be the host alone,
# equal to registry.server below, or builds get no login, so the rest goes into repository.
images {
  registry              = "europe-docker.pkg.dev"
  repository            = "my-gcp-project/estela/projects"
  build_timeout_minutes = 60
}

engine "kubernetes" {
  namespace       = "estela-jobs"
  service_account = "estela-job"
  # Registry tokens last about an hour: nodes pull job images with their own service account
  # (roles/artifactregistry.reader).
  image_pull_secret = ""
}

# The gcp credentials plugin keeps each deploy's archive as the object
# <prefix><project id>/<deploy id>.zip and returns Artifact Registry logins (OAuth2 access
# tokens, user oauth2accesstoken) for image builds.
#
# The Google identity needs roles/storage.objectAdmin on the bucket, and
# roles/artifactregistry.writer on the repository when builds push there.
credentials "gcp" {
  # Pin the plugin binary to a SHA-256 (sha256sum of the file).
  # sha256 = "<64 hex digits>"

  # Cloud Storage bucket of the archives. Required; the bucket must exist.
  bucket = "estela-projects-archives"

  # Start of every object name. Default "projects/"; "" puts the archives at the top of the
  # bucket. A prefix that does not end with "/" gets a warning.
  prefix = "projects/"

  # Path of a service account key file (JSON, type service_account). Default "": Application
  # Default Credentials, which means GOOGLE_APPLICATION_CREDENTIALS in the server's
  # environment (plugins inherit it), gcloud's login, or GKE Workload Identity. Without any of
  # them, the plugin refuses to start.
  # credentials_file = "/var/run/secrets/estela/gcp-key.json"

  # Base URL of the Cloud Storage JSON API, for a test double. Default
  # "https://storage.googleapis.com".
  # endpoint = "https://storage.googleapis.com"

  # Artifact Registry host whose logins image builds get. Without this object, builds get no
  # login, so only a registry that accepts anonymous pushes works.
  registry = {
    # Registry host, without scheme or path. Required in this object.
    server = "europe-docker.pkg.dev"
    # OAuth2 scopes of the access token. Default
    # ["https://www.googleapis.com/auth/cloud-platform"].
    # scopes = ["https://www.googleapis.com/auth/cloud-platform"]
  }
}
