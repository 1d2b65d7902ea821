import re

import scrapy


class BooksSpider(scrapy.Spider):
    """Crawl the books of one category page of the test site."""

    name = "books"

    def __init__(self, base_url=None, category=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not base_url:
            raise ValueError(
                "missing spider argument base_url, "
                "pass it as -a base_url=http://127.0.0.1:8080"
            )
        if not category:
            raise ValueError(
                "missing spider argument category, "
                "pass it as -a category=fiction or -a category=poetry"
            )
        self.base_url = base_url.rstrip("/")
        self.category = category

    def start_requests(self):
        yield scrapy.Request(f"{self.base_url}/books/{self.category}.html")

    def parse(self, response):
        for book in response.css("article.book"):
            price_text = book.css("p.price::text").get()
            yield {
                "title": book.css("h3.title::text").get(),
                "price": float(re.search(r"\d+(?:\.\d+)?", price_text).group()),
                "category": self.category,
            }
