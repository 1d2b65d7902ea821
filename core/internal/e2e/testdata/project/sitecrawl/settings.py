# Scrapy settings for the sitecrawl test project, trimmed from the file that
# "scrapy startproject" (Scrapy 2.8) generates.

BOT_NAME = "sitecrawl"

SPIDER_MODULES = ["sitecrawl.spiders"]
NEWSPIDER_MODULE = "sitecrawl.spiders"

# The test site has no robots.txt, and fetching one would add a request to
# every job's request records.
ROBOTSTXT_OBEY = False

LOG_LEVEL = "INFO"

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
