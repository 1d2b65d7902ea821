"""The job of the running estela-crawl process, for the Scrapy components it installs.

Scrapy builds extensions and middlewares from class paths in the settings and
deep-copies the settings, so the API client and the batch sender cannot travel
in the settings. estela-crawl runs one job per process and stores it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .api import EstelaAPI
from .ingest import BatchSender
from .job import CrawlConfig


@dataclass
class JobRun:
    """The configuration, API client and batch sender of the job being run."""

    config: CrawlConfig
    api: EstelaAPI
    sender: BatchSender


_current_job: Optional[JobRun] = None


def set_current_job(job: Optional[JobRun]) -> None:
    global _current_job
    _current_job = job


def current_job() -> Optional[JobRun]:
    return _current_job
