"""Tests of the settings estela-crawl adds to a project's own."""

import json
import unittest

from scrapy.settings import Settings

from estela_scrapy.crawl import configure_settings
from estela_scrapy.job import read_crawl_config

JOB_INFO = json.dumps(
    {
        "spider": "quotes",
        "api_host": "http://127.0.0.1:8000",
        "auth_token": "token",
        "key": "1.2.3",
    }
)


class ConfigureSettingsTest(unittest.TestCase):
    def test_telnet_console_off_by_default(self):
        settings = Settings()
        configure_settings(settings, read_crawl_config({"JOB_INFO": JOB_INFO}))
        self.assertFalse(settings.getbool("TELNETCONSOLE_ENABLED"))

    def test_project_can_keep_telnet_console(self):
        settings = Settings()
        settings.set("TELNETCONSOLE_ENABLED", True, priority="project")
        configure_settings(settings, read_crawl_config({"JOB_INFO": JOB_INFO}))
        self.assertTrue(settings.getbool("TELNETCONSOLE_ENABLED"))

    def test_memory_limit_from_tier(self):
        settings = Settings()
        config = read_crawl_config({"JOB_INFO": JOB_INFO, "MEMUSAGE_LIMIT_MB": "435"})
        configure_settings(settings, config)
        self.assertTrue(settings.getbool("MEMUSAGE_ENABLED"))
        self.assertEqual(settings.getint("MEMUSAGE_LIMIT_MB"), 435)


if __name__ == "__main__":
    unittest.main()
