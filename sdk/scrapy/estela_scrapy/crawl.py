"""estela-crawl: run one spider of the Scrapy project in the current directory as a job.

The job is described by the JOB_INFO environment variable. The command
reports the job's status to the API with PATCH requests, and sends its items,
requests, logs and stats to the API's ingest endpoint in batches.

Exit status: 0 when the job ended COMPLETED, 1 when it ended ERROR, 2 when
the environment is invalid (nothing is reported to the API then).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

from scrapy.crawler import CrawlerProcess
from scrapy.settings import SETTINGS_PRIORITIES

from .api import EstelaAPI
from .errors import ConfigError, ProjectError, format_failure, summarize_exception, summarize_failure
from .ingest import BatchSender
from .job import CrawlConfig, job_environment, read_crawl_config
from .logs import IngestLogHandler
from .project import load_project_settings
from .redis_stats import delete_live_stats
from .runtime import JobRun, set_current_job

logger = logging.getLogger(__name__)

STATUS_COMPLETED = "COMPLETED"
STATUS_ERROR = "ERROR"

# Scrapy's default LOG_FORMAT and LOG_DATEFORMAT, for the lines logged
# before Scrapy configures logging.
STDERR_LOG_FORMAT = "%(asctime)s [%(name)s] %(levelname)s: %(message)s"
STDERR_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Order 950 puts the middleware next to the downloader (see middlewares.py).
DOWNLOADER_MIDDLEWARES = {
    "estela_scrapy.middlewares.RequestRecordMiddleware": 950,
    # Before Scrapy's HttpProxyMiddleware (750), which turns the proxy meta into the request.
    "estela_scrapy.proxy.EstelaProxyMiddleware": 700,
}
EXTENSIONS = {"estela_scrapy.extensions.JobReporter": 100}
REDIS_EXTENSIONS = {"estela_scrapy.redis_stats.RedisStatsWriter": 110}
SCRAPY_MEMORY_USAGE = "scrapy.extensions.memusage.MemoryUsage"
# Replaces Scrapy's MemoryUsage at the same order (see memusage.py for why).
MEMORY_USAGE_EXTENSIONS = {SCRAPY_MEMORY_USAGE: None, "estela_scrapy.memusage.MemoryUsage": 0}


@dataclass
class CrawlResult:
    """Outcome of a crawl: its final stats if the spider opened, and its failure if any."""

    stats: Optional[dict] = None
    error: Optional[str] = None
    memusage_limit_mb: int = 0


def main() -> int:
    """Run the job described by the environment and return the exit status."""
    started = time.monotonic()
    try:
        config = read_crawl_config(os.environ)
    except ConfigError as error:
        print(f"estela-crawl: {error}", file=sys.stderr)
        return 2

    os.environ.update(job_environment(config.job))
    key = config.job.key
    api = EstelaAPI(config.job.api_host, config.job.auth_token)
    sender = BatchSender(lambda batch: api.send_batch(key, batch.kind, batch.batch_id, batch.body()))
    sender.start()
    ingest_handler = IngestLogHandler(sender)
    logging.root.addHandler(ingest_handler)
    # Until Scrapy configures logging, this handler prints to stderr and the
    # root level lets INFO records through. run_crawl() removes it.
    startup_handler = logging.StreamHandler(sys.stderr)
    startup_handler.setFormatter(logging.Formatter(STDERR_LOG_FORMAT, STDERR_DATE_FORMAT))
    logging.root.addHandler(startup_handler)
    logging.root.setLevel(logging.INFO)
    set_current_job(JobRun(config=config, api=api, sender=sender))

    result = run_crawl(config, ingest_handler, startup_handler)
    status, error_reason = job_status(result)
    if status == STATUS_ERROR:
        logger.error("job %s failed: %s", key, error_reason)
    else:
        logger.info("job %s completed", key)

    # The stats record and the final status go out only after every other
    # record, so a COMPLETED job's data is complete when the API receives it.
    lifespan = time.monotonic() - started
    if result.stats is not None:
        sender.add("stats", stats_record(result.stats, lifespan))
    logging.root.removeHandler(ingest_handler)
    sender.close()
    set_current_job(None)
    api.update_job(key, final_fields(status, result.stats, lifespan, error_reason))
    if config.redis_url:
        delete_live_stats(config.redis_url, config.redis_stats_key)
    return 1 if status == STATUS_ERROR else 0


def run_crawl(config: CrawlConfig, ingest_handler, startup_handler) -> CrawlResult:
    """Run the spider in this process with the project's settings plus estela's components."""
    spider_name = config.job.spider
    try:
        settings = load_project_settings()
        configure_settings(settings, config)
        ingest_handler.setLevel(settings.get("LOG_LEVEL"))

        # CrawlerProcess installs Scrapy's root handler, which prints to
        # stderr from then on. It imports the spiders before that, so the
        # startup handler comes back if that import fails.
        logging.root.removeHandler(startup_handler)
        try:
            process = CrawlerProcess(settings)
        except Exception:
            logging.root.addHandler(startup_handler)
            raise
        available = sorted(process.spider_loader.list())
        if spider_name not in available:
            raise ProjectError(
                f"spider {spider_name!r} not found in the project, "
                f"which has the spiders: {', '.join(available) or 'none'}"
            )
        crawler = process.create_crawler(spider_name)
        failures = []
        deferred = process.crawl(crawler, **config.job.args)
        deferred.addErrback(failures.append)
        process.start()
    except ProjectError as error:
        return CrawlResult(error=str(error))
    except Exception as error:
        logger.exception("crawl of spider %s failed", spider_name)
        return CrawlResult(error=summarize_exception(error))

    result = CrawlResult(memusage_limit_mb=crawler.settings.getint("MEMUSAGE_LIMIT_MB"))
    if crawler.spider is not None and crawler.stats.get_value("start_time") is not None:
        result.stats = dict(crawler.stats.get_stats())
    if failures:
        logger.error(
            "crawl of spider %s failed:\nTraceback (most recent call last):\n%s",
            spider_name, format_failure(failures[0]),
        )
        result.error = summarize_failure(failures[0])
    elif result.stats is None:
        result.error = f"spider {spider_name!r} stopped before it opened"
    return result


def configure_settings(settings, config: CrawlConfig) -> None:
    """Add estela's components and the job's limits to the project's settings."""
    _add_components(settings, "DOWNLOADER_MIDDLEWARES", DOWNLOADER_MIDDLEWARES)
    _add_components(settings, "EXTENSIONS", EXTENSIONS)
    if config.redis_url:
        _add_components(settings, "EXTENSIONS", REDIS_EXTENSIONS)
    if settings.getdict("EXTENSIONS").get(SCRAPY_MEMORY_USAGE, 0) is not None:
        _add_components(settings, "EXTENSIONS", MEMORY_USAGE_EXTENSIONS)

    # Scrapy's own default is DEBUG, which would send every request to the logs.
    if settings.getpriority("LOG_LEVEL") <= SETTINGS_PRIORITIES["default"]:
        settings.set("LOG_LEVEL", "INFO", priority="default")

    # Each job would open a telnet port in 6023-6073, so many jobs on one machine run out of
    # them; nobody logs in to a job's console on the platform. A project may still turn it on.
    if settings.getpriority("TELNETCONSOLE_ENABLED") <= SETTINGS_PRIORITIES["default"]:
        settings.set("TELNETCONSOLE_ENABLED", False, priority="default")

    if config.memusage_limit_mb:
        settings.set("MEMUSAGE_ENABLED", True, priority="cmdline")
        settings.set("MEMUSAGE_LIMIT_MB", config.memusage_limit_mb, priority="cmdline")


def _add_components(settings, name, components) -> None:
    merged = settings.getdict(name)
    merged.update(components)
    settings.set(name, merged, priority="cmdline")


def job_status(result: CrawlResult) -> Tuple[str, Optional[str]]:
    """Return the final job status and, for ERROR, the error reason."""
    if result.error:
        return STATUS_ERROR, result.error
    if result.stats.get("finish_reason") == "memusage_exceeded":
        peak = result.stats.get("memusage/max")
        return STATUS_ERROR, (
            f"Scrapy closed the spider because its memory usage exceeded "
            f"MEMUSAGE_LIMIT_MB={result.memusage_limit_mb} (close reason memusage_exceeded, "
            f"peak {peak} bytes)"
        )
    return STATUS_COMPLETED, None


def stats_record(stats: dict, lifespan: float) -> dict:
    record = dict(stats)
    # Scrapy's CoreStats sets elapsed_time_seconds at close. A project that
    # disables CoreStats gets the job's lifespan instead.
    record.setdefault("elapsed_time_seconds", round(lifespan, 3))
    return record


def final_fields(status, stats, lifespan, error_reason) -> List[Tuple[str, str]]:
    """Build the form fields of the final status update.

    The fields match estela-entrypoint's final PATCH, with lifespan in whole
    seconds and proxy_usage_data as a JSON string.
    """
    stats = stats or {}
    proxy_usage = {
        "proxy_name": os.environ.get("ESTELA_PROXY_NAME", ""),
        "bytes": int(stats.get("downloader/proxies/response_bytes", 0)),
    }
    fields = [("status", status)]
    if error_reason:
        fields.append(("error_reason", error_reason))
    fields += [
        ("lifespan", str(int(lifespan))),
        ("total_response_bytes", str(int(stats.get("downloader/response_bytes", 0)))),
        ("item_count", str(int(stats.get("item_scraped_count", 0)))),
        ("request_count", str(int(stats.get("downloader/request_count", 0)))),
        ("proxy_usage_data", json.dumps(proxy_usage)),
    ]
    return fields
