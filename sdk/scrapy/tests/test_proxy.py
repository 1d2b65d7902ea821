"""Tests of the proxy middleware's configuration from the ESTELA_PROXY_* variables."""

import unittest

from scrapy.http import HtmlResponse, Request
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector

from estela_scrapy.proxy import PROXY_BYTES_STAT, EstelaProxyMiddleware, proxy_url


class ProxyUrlTest(unittest.TestCase):
    def test_off_unless_enabled(self):
        self.assertIsNone(proxy_url({"ESTELA_PROXY_URL": "proxy.example"}))
        self.assertIsNone(proxy_url({"ESTELA_PROXIES_ENABLED": "True"}))

    def test_credentials_are_quoted(self):
        env = {
            "ESTELA_PROXIES_ENABLED": "True",
            "ESTELA_PROXY_URL": "http://proxy.example",
            "ESTELA_PROXY_PORT": "8080",
            "ESTELA_PROXY_USER": "user@team",
            "ESTELA_PROXY_PASS": "p:ss/word",
        }
        self.assertEqual(proxy_url(env), "http://user%40team:p%3Ass%2Fword@proxy.example:8080")


class MiddlewareTest(unittest.TestCase):
    def test_routes_and_counts(self):
        stats = MemoryStatsCollector(crawler=type("Crawler", (), {"settings": Settings()})())
        middleware = EstelaProxyMiddleware("http://proxy.example:8080", stats)
        request = Request("http://site.example/")
        middleware.process_request(request, spider=None)
        self.assertEqual(request.meta["proxy"], "http://proxy.example:8080")
        response = HtmlResponse("http://site.example/", body=b"x" * 100, request=request)
        middleware.process_response(request, response, spider=None)
        self.assertEqual(stats.get_value(PROXY_BYTES_STAT), 100)

    def test_keeps_a_proxy_the_spider_set(self):
        stats = MemoryStatsCollector(crawler=type("Crawler", (), {"settings": Settings()})())
        middleware = EstelaProxyMiddleware("http://proxy.example:8080", stats)
        request = Request("http://site.example/", meta={"proxy": "http://other.example:3128"})
        middleware.process_request(request, spider=None)
        self.assertEqual(request.meta["proxy"], "http://other.example:3128")


if __name__ == "__main__":
    unittest.main()
