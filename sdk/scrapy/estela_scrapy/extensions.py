"""Scrapy extension that reports a job's start and its scraped items."""

import logging

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet.threads import deferToThread

from .runtime import current_job

logger = logging.getLogger(__name__)

# Form fields of the status update that estela-entrypoint sends when the spider opens.
RUNNING_FIELDS = (
    ("status", "RUNNING"),
    ("lifespan", "0:00:00"),
    ("total_response_bytes", "0"),
    ("item_count", "0"),
    ("request_count", "0"),
    ("proxy_usage_data", "{}"),
)


class JobReporter:
    """Extension that PATCHes the job RUNNING when the spider opens and sends each scraped item."""

    def __init__(self, job):
        self._job = job

    @classmethod
    def from_crawler(cls, crawler):
        job = current_job()
        if job is None:
            raise NotConfigured("JobReporter reports only jobs that estela-crawl runs")
        extension = cls(job)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.item_scraped, signal=signals.item_scraped)
        return extension

    def spider_opened(self, spider):
        # The engine waits for the returned Deferred, so RUNNING reaches the
        # API before anything else about this crawl, without blocking the reactor.
        deferred = deferToThread(self._job.api.update_job, self._job.config.job.key, RUNNING_FIELDS)
        deferred.addErrback(self._log_update_failure)
        return deferred

    def item_scraped(self, item, spider):
        self._job.sender.add("items", ItemAdapter(item).asdict())

    def _log_update_failure(self, failure):
        logger.error(
            "status update RUNNING of job %s failed: %s",
            self._job.config.job.key,
            failure.getTraceback(),
        )
