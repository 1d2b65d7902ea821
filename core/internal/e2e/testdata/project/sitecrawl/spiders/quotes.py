import re

import scrapy


class QuotesSpider(scrapy.Spider):
    """Crawl the paged quotes of the test site, following each "next" link."""

    name = "quotes"

    def __init__(self, base_url=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not base_url:
            raise ValueError(
                "missing spider argument base_url, "
                "pass it as -a base_url=http://127.0.0.1:8080"
            )
        self.base_url = base_url.rstrip("/")

    def start_requests(self):
        yield scrapy.Request(f"{self.base_url}/quotes/page/1.html")

    def parse(self, response):
        page = int(re.search(r"/page/(\d+)\.html$", response.url).group(1))
        for quote in response.css("div.quote"):
            yield {
                "text": quote.css("span.text::text").get(),
                "author": quote.css("small.author::text").get(),
                "page": page,
            }
        self.logger.info("parsed page %d", page)

        next_href = response.css("a.next::attr(href)").get()
        if next_href:
            yield response.follow(next_href, callback=self.parse)
