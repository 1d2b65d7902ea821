"""Job-side commands that run Scrapy projects for an estela API server.

estela-crawl runs one spider as a job and reports its status, items, requests,
logs and stats to the API over HTTP. estela-describe-project and
estela-report-deploy list the spiders of a deployed project.
"""

__version__ = "0.1.0"
