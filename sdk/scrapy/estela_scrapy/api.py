"""HTTP client for the estela API calls that jobs and deploy builds make."""

from __future__ import annotations

import logging
import threading
import time
from typing import Mapping, Optional, Sequence, Tuple

import requests

from .job import JobKey

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30.0

# Waits between attempts. Status updates get three attempts in all. Ingest
# batches get eight attempts and wait 47.5 s in all, so with request time a
# batch is given up after about a minute of failures.
STATUS_RETRY_DELAYS = (1.0, 2.0)
INGEST_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0)

# Bytes of an error response body to include in a log line.
LOGGED_BODY_CHARS = 300


class EstelaAPI:
    """Client for the job status, job data ingest and deploy status endpoints.

    Every call sends "Authorization: Token <token>". Connection errors,
    timeouts and 5xx responses are retried after the configured delays, and
    4xx responses are logged and not retried. Methods return True on a 2xx
    response and never raise for HTTP or network failures. Each thread gets
    its own requests.Session because sessions are not thread-safe.
    """

    def __init__(
        self,
        api_host: str,
        auth_token: str,
        timeout: float = TIMEOUT_SECONDS,
        status_retry_delays: Sequence[float] = STATUS_RETRY_DELAYS,
        ingest_retry_delays: Sequence[float] = INGEST_RETRY_DELAYS,
    ):
        self.api_host = api_host.rstrip("/")
        self._headers = {"Authorization": f"Token {auth_token}"}
        self._timeout = timeout
        self._status_retry_delays = tuple(status_retry_delays)
        self._ingest_retry_delays = tuple(ingest_retry_delays)
        self._local = threading.local()

    def job_url(self, key: JobKey) -> str:
        return f"{self.api_host}/api/projects/{key.pid}/spiders/{key.sid}/jobs/{key.jid}"

    def update_job(self, key: JobKey, fields: Sequence[Tuple[str, str]]) -> bool:
        """PATCH the job with form-urlencoded fields, such as status and counters."""
        status = dict(fields).get("status", "")
        return self._request(
            "PATCH",
            self.job_url(key),
            f"status update {status} of job {key}",
            self._status_retry_delays,
            data=list(fields),
        )

    def send_batch(self, key: JobKey, kind: str, batch_id: str, body: bytes) -> bool:
        """POST one JSON batch of job data to the job's ingest endpoint.

        Retries send the same body and batch_id, so the server can store a
        batch once even when a response was lost after it stored the batch.
        """
        return self._request(
            "POST",
            self.job_url(key) + "/ingest",
            f"{kind} batch {batch_id} of job {key}",
            self._ingest_retry_delays,
            data=body,
            headers={"Content-Type": "application/json"},
        )

    def update_deploy(self, pid: str, did: str, payload: Mapping) -> bool:
        """PUT the result of a deploy build as JSON."""
        return self._request(
            "PUT",
            f"{self.api_host}/api/projects/{pid}/deploys/{did}",
            f"status update {payload.get('status')} of deploy {did} in project {pid}",
            self._status_retry_delays,
            json=dict(payload),
        )

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _request(
        self,
        method: str,
        url: str,
        description: str,
        retry_delays: Sequence[float],
        headers: Optional[Mapping[str, str]] = None,
        **kwargs,
    ) -> bool:
        all_headers = dict(self._headers)
        all_headers.update(headers or {})
        attempts = len(retry_delays) + 1

        for attempt in range(1, attempts + 1):
            try:
                response = self._session().request(
                    method, url, headers=all_headers, timeout=self._timeout, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                problem = f"{type(error).__name__}: {error}"
            except requests.RequestException as error:
                logger.error("%s failed, not retrying: %s: %s", description, type(error).__name__, error)
                return False
            else:
                if 200 <= response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}: {response.text[:LOGGED_BODY_CHARS]}"
                if response.status_code < 500:
                    logger.error("%s rejected by %s %s, not retrying: %s", description, method, url, problem)
                    return False

            if attempt == attempts:
                logger.error("%s failed after %d attempts: %s", description, attempts, problem)
                return False
            delay = retry_delays[attempt - 1]
            logger.warning(
                "%s failed (attempt %d of %d), retrying in %.1f s: %s",
                description, attempt, attempts, delay, problem,
            )
            time.sleep(delay)
        return False
