# estela-go server configuration: AWS credentials (project archives in S3, image pushes to ECR)
# with the kubernetes engine, as on EKS. configs/kubernetes.hcl documents the engine and the
# server settings in full.
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

# Deploys become <registry>/<repository>:estela_<pid>_<did>. The registry is the ECR host of
# the ecr block below, so the credentials plugin supplies the login for the push.
images {
  registry              = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
  repository            = "estela-projects"
  build_timeout_minutes = 60
}

engine "kubernetes" {
  namespace         = "estela-jobs"
  service_account   = "estela-job"
  # ECR logins expire after 12 hours: nodes pull job images with their own IAM role.
  image_pull_secret = ""
}

# The aws credentials plugin keeps each deploy's archive as the S3 object
# <prefix><project id>/<deploy id>.zip and returns ECR logins for image builds.
#
# AWS credentials come from the standard chain of the server's environment, which plugins
# inherit: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared config files (AWS_PROFILE),
# IAM roles for service accounts or EKS Pod Identity, then the instance role. The identity
# needs s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on the bucket,
# s3:AbortMultipartUpload for failed uploads, ecr:GetAuthorizationToken, and the ECR push
# permissions on the repository (build pods push with its token).
credentials "aws" {
  # Pin the plugin binary to a SHA-256 (sha256sum of the file).
  # sha256 = "<64 hex digits>"

  # S3 bucket of the archives. Required; the bucket must exist.
  bucket = "estela-projects-archives"

  # Start of every archive key. Default "projects/"; "" puts the archives at the top of the
  # bucket. A prefix that does not end with "/" gets a warning.
  prefix = "projects/"

  # AWS region. Default: the region of the AWS configuration chain (AWS_REGION, the shared
  # config file); with neither, the plugin refuses to start.
  region = "eu-west-1"

  # URL of an S3-compatible store such as MinIO, for example "http://minio.estela:9000".
  # Default "" (AWS S3). With an endpoint and no region, the region is us-east-1.
  # endpoint = ""

  # Path-style addressing (endpoint/bucket/key) instead of bucket.endpoint/key. Default true
  # when endpoint is set, else false.
  # use_path_style = false

  # ECR registry whose logins image builds get. Without this object, builds get no login, so
  # only a registry that accepts anonymous pushes works.
  ecr = {
    # 12-digit AWS account id of the registry. Default: the account of the plugin's identity.
    # registry_id = "123456789012"
    # Region of the registry. Default: the region above.
    # region = "eu-west-1"
    # URL of the ECR API, for a VPC endpoint or a test double. Default: the AWS one.
    # endpoint = ""
  }
}
