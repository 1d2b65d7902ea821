# estela-go server configuration: one machine, the local engine and local credentials.
# Every value can use env("NAME", "default"). ESTELA_LISTEN, ESTELA_API_HOST, DATABASE_URL,
# REDIS_URL and ESTELA_PLUGIN_DIR override the matching settings when set.

# Address of the HTTP API.
listen = "127.0.0.1:8000"

# Base URL that jobs use to call the API back (status reports and data). Defaults to
# http://<listen>.
# api_host = "http://127.0.0.1:8000"

# Folders searched for plugin binaries named estela-engine-<name> and estela-credentials-<name>.
plugin_dirs = ["bin/plugins"]

# Origins allowed to call the API from a browser (estela-web runs on its own origin), e.g.
# cors_origins = ["http://localhost:3000"]
cors_origins = []

# Largest accepted project archive, in bytes.
max_upload_bytes = 104857600

worker {
  # Job launches and deploy preparations that this worker runs at once. It does not limit how
  # many jobs run: max_running_jobs of the local engine does.
  concurrency = 16
  # Seconds between two comparisons of active jobs with the engine.
  reconcile_seconds = 10
  # Seconds a dispatched job may be missing from the engine before it is dispatched again.
  lost_job_grace_seconds = 60
}

# The local engine runs each job as a process on this machine.
engine "local" {
  # Unpacked deploys and job logs.
  data_dir = "${env("ESTELA_DATA_DIR", ".estela")}/engine"
  # Folder holding bin/estela-crawl and the other job-side scripts.
  job_side_dir = "sdk/scrapy"
  # Python interpreter with Scrapy; empty means detect (ESTELA_PYTHON, /usr/bin/python3, python3).
  python = env("ESTELA_PYTHON")
  # Most jobs that may run at once; a job beyond it stays IN_QUEUE until one ends. Default 0,
  # no limit: every launched job starts its process at once.
  # max_running_jobs = 8
  # Time between SIGTERM and SIGKILL when a job is stopped, a positive Go duration in quotes.
  # Default "10s".
  # stop_grace = "10s"
  # Largest unpacked size of a deploy, in bytes. Default 536870912 (512 MiB).
  # max_unpacked_bytes = 536870912
  # Time limit of reading a deploy's spiders. Default "2m".
  # describe_timeout = "2m"
}

# The local credentials plugin keeps uploaded project archives on disk.
credentials "local" {
  data_dir = "${env("ESTELA_DATA_DIR", ".estela")}/archives"
}

# Accounts: self-registration and the e-mails with activation and password-reset links.
# Without an smtp block, account e-mails are only logged (recipient and subject, never the
# link), so users cannot activate themselves or reset a password.
# accounts {
#   # Let anyone create an account through POST /api/auth/register (off by default).
#   register = false
#   # The web UI's address: activation redirects and reset links point there. Required with
#   # an smtp block; http://localhost:3000 (estela-web's development server) otherwise.
#   frontend_url = "https://estela.example.com"
#   # The API's public address, used in activation links; api_host when unset.
#   # api_url = "https://api.estela.example.com"
#   # How long mailed links stay valid, as Go durations.
#   activation_ttl = "24h"
#   reset_ttl      = "1h"
#   smtp {
#     host = "smtp.example.com"
#     # 587 (STARTTLS) when unset; 465 uses TLS from the start.
#     port     = 587
#     username = "estela"
#     password = env("ESTELA_SMTP_PASSWORD")
#     from     = "estela <noreply@example.com>"
#   }
# }
