"""Downloader middleware that sends requests through the proxy provider the platform gave."""

import os
from urllib.parse import quote

from scrapy.exceptions import NotConfigured

PROXY_BYTES_STAT = "downloader/proxies/response_bytes"


class EstelaProxyMiddleware:
    """Route every request through the proxy in the ESTELA_PROXY_* variables.

    The platform sets them, with ESTELA_PROXIES_ENABLED=True, when a job names a proxy
    provider in ESTELA_PROXY_NAME. The bytes received through the proxy are counted in the
    stat downloader/proxies/response_bytes, which the final status report sends as
    proxy_usage_data.
    """

    def __init__(self, proxy_url, stats):
        self._proxy_url = proxy_url
        self._stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        url = proxy_url(os.environ)
        if url is None:
            raise NotConfigured("ESTELA_PROXIES_ENABLED is not True or ESTELA_PROXY_URL is missing")
        return cls(url, crawler.stats)

    def process_request(self, request, spider):
        request.meta.setdefault("proxy", self._proxy_url)

    def process_response(self, request, response, spider):
        if request.meta.get("proxy") == self._proxy_url:
            self._stats.inc_value(PROXY_BYTES_STAT, len(response.body), spider=spider)
        return response


def proxy_url(environ):
    """Return the proxy URL from the ESTELA_PROXY_* variables, or None when proxies are off."""
    if environ.get("ESTELA_PROXIES_ENABLED") != "True" or not environ.get("ESTELA_PROXY_URL"):
        return None
    host = environ["ESTELA_PROXY_URL"].split("://", 1)[-1].rstrip("/")
    port = environ.get("ESTELA_PROXY_PORT", "")
    netloc = f"{host}:{port}" if port else host
    user = environ.get("ESTELA_PROXY_USER", "")
    if user:
        credentials = quote(user, safe="") + ":" + quote(environ.get("ESTELA_PROXY_PASS", ""), safe="")
        netloc = f"{credentials}@{netloc}"
    return f"http://{netloc}"
