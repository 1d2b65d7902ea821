"""estela-report-deploy: report the spiders of a built project to the API.

Environment: KEY is "<pid>.<did>", TOKEN is the API token, and JOB_INFO is a
JSON object whose api_host is the API's base URL. Exit status: 0 when the
API accepted the report (SUCCESS or FAILURE), 1 when the PUT failed, 2 when
the environment is invalid.
"""

import logging
import os
import sys

from .api import EstelaAPI
from .errors import ConfigError, ProjectError
from .job import decode_job_info_object, read_api_host
from .project import list_spiders, load_project_settings

logger = logging.getLogger(__name__)


def read_deploy_key(text):
    """Split KEY into (pid, did)."""
    if not text:
        raise ConfigError("missing environment variable KEY: set it to <pid>.<did>")
    parts = text.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"invalid KEY {text!r}: expected <pid>.<did>")
    return parts[0], parts[1]


def deploy_report():
    """Return the JSON body of the deploy status update for the current project."""
    try:
        spiders = list_spiders(load_project_settings())
    except ProjectError as error:
        return {"status": "FAILURE", "spiders_names": [], "error_reason": str(error)}
    if not spiders:
        return {
            "status": "FAILURE",
            "spiders_names": [],
            "error_reason": "no spiders found in the project: check SPIDER_MODULES in its settings",
        }
    return {"status": "SUCCESS", "spiders_names": spiders}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    try:
        pid, did = read_deploy_key(os.environ.get("KEY"))
        token = os.environ.get("TOKEN")
        if not token:
            raise ConfigError("missing environment variable TOKEN: set it to the API token")
        api_host = read_api_host(decode_job_info_object(os.environ.get("JOB_INFO")))
    except ConfigError as error:
        print(f"estela-report-deploy: {error}", file=sys.stderr)
        return 2

    report = deploy_report()
    if report["status"] == "FAILURE":
        logger.error("deploy %s of project %s failed: %s", did, pid, report["error_reason"])
    else:
        logger.info("deploy %s of project %s has the spiders: %s", did, pid, ", ".join(report["spiders_names"]))

    if not EstelaAPI(api_host, token).update_deploy(pid, did, report):
        print(f"estela-report-deploy: reporting deploy {did} of project {pid} to {api_host} failed", file=sys.stderr)
        return 1
    return 0
