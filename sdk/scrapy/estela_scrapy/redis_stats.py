"""Scrapy extension that keeps a job's live stats in a Redis hash while the spider runs."""

import json
import logging
import time

import redis
from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from .runtime import current_job
from .serialize import to_jsonable

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 5.0

# LEFTOVER_TTL_SECONDS is how long the hash outlives its last write when
# estela-crawl ends before it can delete it. The server reads a killed job's
# hash within minutes of its end.
LEFTOVER_TTL_SECONDS = 3600


def redis_client(url):
    """Return a Redis client for url with the job side's timeouts."""
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def delete_live_stats(url, key):
    """Delete the live stats hash, after the job's final report. Errors are logged."""
    try:
        redis_client(url).delete(key)
    except (redis.RedisError, ValueError) as error:
        logger.warning("deleting the live stats hash %s in Redis failed: %s", key, error)


def stats_hash(stats, elapsed_seconds):
    """Return the Redis hash fields of a stats dict: each value encoded as JSON."""
    fields = {str(name): json.dumps(to_jsonable(value)) for name, value in stats.items()}
    fields["elapsed_time_seconds"] = json.dumps(round(elapsed_seconds, 3))
    return fields


class RedisStatsWriter:
    """Extension that writes the whole stats dict to a Redis hash at an interval.

    The hash is written when the spider opens, every interval seconds, and a
    last time when the spider closes, with an expiry. estela-crawl deletes it
    after the job's final report, so that the API shows the final counters
    until the report arrives. Writes run in the reactor's thread pool. Redis
    errors are logged and never stop the crawl.
    """

    def __init__(self, stats, client, key, interval):
        self._stats = stats
        self._client = client
        self._key = key
        self._interval = interval
        self._loop = None
        self._write_in_progress = None
        self._opened_at = None
        self._failures = 0

    @classmethod
    def from_crawler(cls, crawler):
        job = current_job()
        if job is None or not job.config.redis_url:
            raise NotConfigured("RedisStatsWriter needs estela-crawl with REDIS_URL set")
        try:
            client = redis_client(job.config.redis_url)
        except ValueError as error:
            logger.error("invalid REDIS_URL, live stats are off for this job: %s", error)
            raise NotConfigured("invalid REDIS_URL") from error
        writer = cls(crawler.stats, client, job.config.redis_stats_key, job.config.redis_stats_interval)
        crawler.signals.connect(writer.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(writer.spider_closed, signal=signals.spider_closed)
        return writer

    def spider_opened(self, spider):
        self._opened_at = time.monotonic()
        self._loop = LoopingCall(self._write_snapshot)
        self._loop.start(self._interval, now=True).addErrback(self._log_loop_failure)

    def spider_closed(self, spider, reason):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._opened_at is None:
            return None
        # The last write goes after a write in progress, which would otherwise
        # overwrite it with older values.
        fields = stats_hash(self._stats.get_stats(), time.monotonic() - self._opened_at)
        deferred = self._write_in_progress or defer.succeed(None)
        deferred.addBoth(lambda _: deferToThread(self._write_last, fields))
        return deferred

    def _write_snapshot(self):
        if self._write_in_progress is not None:
            return
        # Copy the stats in the reactor thread, where Scrapy changes them.
        fields = stats_hash(self._stats.get_stats(), time.monotonic() - self._opened_at)
        self._write_in_progress = deferToThread(self._write, fields)
        self._write_in_progress.addBoth(self._write_done)

    def _write_done(self, result):
        self._write_in_progress = None
        return None

    def _write(self, fields):
        try:
            self._client.hset(self._key, mapping=fields)
        except redis.RedisError as error:
            self._record_failure("writing", error)
        else:
            self._record_success()

    def _write_last(self, fields):
        try:
            pipeline = self._client.pipeline()
            pipeline.hset(self._key, mapping=fields)
            pipeline.expire(self._key, LEFTOVER_TTL_SECONDS)
            pipeline.execute()
        except redis.RedisError as error:
            self._record_failure("writing", error)

    def _record_failure(self, action, error):
        # Log the first failure of a streak, so a Redis outage logs one line.
        self._failures += 1
        if self._failures == 1:
            logger.warning("%s the live stats hash %s in Redis failed: %s", action, self._key, error)

    def _record_success(self):
        if self._failures:
            logger.info(
                "writing the live stats hash %s in Redis works again after %d failures",
                self._key, self._failures,
            )
        self._failures = 0

    def _log_loop_failure(self, failure):
        logger.error("live stats loop for %s stopped: %s", self._key, failure.getTraceback())
