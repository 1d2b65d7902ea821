"""Scrapy's MemoryUsage extension, with its first check moved after the engine starts."""

from scrapy.extensions.memusage import MemoryUsage as ScrapyMemoryUsage


class MemoryUsage(ScrapyMemoryUsage):
    """MemoryUsage that cannot hang the crawl when the limit is exceeded at startup.

    Scrapy 2.8 runs the first limit check inside the engine_started signal,
    before the engine counts as running. If memory already exceeds
    MEMUSAGE_LIMIT_MB then, the spider closes, stopping the engine fails with
    "Engine not running" and the process never exits. Running the checks one
    reactor turn later, when the engine is running, avoids that.
    """

    def engine_started(self):
        from twisted.internet import reactor

        reactor.callLater(0, super().engine_started)
