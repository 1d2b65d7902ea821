"""Scrapy downloader middleware that records every response as a "requests" record."""

import datetime
import logging

from scrapy.exceptions import NotConfigured

from .runtime import current_job

logger = logging.getLogger(__name__)


class RequestRecordMiddleware:
    """Downloader middleware that sends one record per downloaded response.

    estela-crawl installs it at order 950, next to the downloader, so it
    records redirect and error responses before other middlewares handle
    them, and response_size counts the body as received, before decompression.
    """

    def __init__(self, sender, fingerprinter):
        self._sender = sender
        self._fingerprinter = fingerprinter

    @classmethod
    def from_crawler(cls, crawler):
        job = current_job()
        if job is None:
            raise NotConfigured("RequestRecordMiddleware records only jobs that estela-crawl runs")
        return cls(job.sender, crawler.request_fingerprinter)

    def process_response(self, request, response, spider):
        try:
            self._sender.add("requests", request_record(request, response, self._fingerprinter))
        except Exception:
            # A record that cannot be built must not break the crawl.
            logger.exception("recording the response of %s failed", request.url)
        return response


def request_record(request, response, fingerprinter):
    """Build the requests record of one response.

    duration is Scrapy's download latency in milliseconds, and time is the
    UTC time the response arrived, as "dd/mm/YYYY HH:MM:SS.mmm".
    """
    latency = request.meta.get("download_latency") or 0.0
    received = datetime.datetime.now(datetime.timezone.utc)
    return {
        "url": response.url,
        "status": int(response.status),
        "method": request.method,
        "duration": int(latency * 1000),
        "time": received.strftime("%d/%m/%Y %H:%M:%S.%f")[:-3],
        "response_size": len(response.body),
        "fingerprint": fingerprinter.fingerprint(request).hex(),
    }
