"""JOB_INFO parsing, exported environment and JSON conversion."""

import datetime
import decimal
import json
import unittest

import scrapy

from estela_scrapy.errors import ConfigError, summarize_exception
from estela_scrapy.job import JobKey, job_environment, parse_job_info, read_crawl_config
from estela_scrapy.serialize import to_jsonable

VALID_JOB_INFO = {
    "spider": "quotes",
    "api_host": "http://127.0.0.1:8000/",
    "auth_token": "secret-token",
    "key": "3.2.p1",
    "collection": "scj5.2.p1",
    "args": {"base_url": "http://127.0.0.1:1", "pages": 3},
    "env_vars": {"FEATURE": "on", "DEBUG": True},
    "unique": "True",
}


class ParseJobInfoTest(unittest.TestCase):
    def test_valid_job_info(self):
        job = parse_job_info(json.dumps(VALID_JOB_INFO))
        self.assertEqual(job.spider, "quotes")
        self.assertEqual(job.api_host, "http://127.0.0.1:8000")
        self.assertEqual(job.key, JobKey(jid="3", sid="2", pid="p1"))
        self.assertEqual(job.collection, "scj5.2.p1")
        self.assertEqual(job.unique, "True")
        self.assertEqual(job.args, {"base_url": "http://127.0.0.1:1", "pages": "3"})
        self.assertEqual(job.env_vars, {"FEATURE": "on", "DEBUG": "True"})

    def test_defaults_for_optional_fields(self):
        minimal = {name: VALID_JOB_INFO[name] for name in ("spider", "api_host", "auth_token", "key")}
        job = parse_job_info(json.dumps(minimal))
        self.assertEqual(job.collection, "3.2.p1")
        self.assertEqual(job.unique, "False")
        self.assertEqual(job.args, {})
        self.assertEqual(job.env_vars, {})

    def test_invalid_job_info(self):
        cases = {
            "empty": ("", "missing environment variable JOB_INFO"),
            "leading space": (" " + json.dumps(VALID_JOB_INFO), "must be a JSON object starting with '{'"),
            "truncated": ('{"spider": ', "not valid JSON"),
            "api_host without scheme": ({"api_host": "127.0.0.1:8000"}, "expected an http:// or https:// URL"),
            "empty spider": ({"spider": ""}, "missing or empty string field 'spider'"),
            "numeric token": ({"auth_token": 5}, "missing or empty string field 'auth_token'"),
            "key with two parts": ({"key": "3.2"}, "invalid JOB_INFO field 'key' '3.2'"),
            "key with empty part": ({"key": "3..p1"}, "invalid JOB_INFO field 'key' '3..p1'"),
            "args as list": ({"args": ["a"]}, "field 'args': expected a JSON object"),
            "nested env value": ({"env_vars": {"A": {"b": 1}}}, "field 'env_vars.A'"),
            "unique not boolean": ({"unique": "yes"}, "invalid JOB_INFO field 'unique'"),
        }
        for name, (change, message) in cases.items():
            with self.subTest(name):
                if isinstance(change, dict):
                    text = json.dumps({**VALID_JOB_INFO, **change})
                else:
                    text = change
                with self.assertRaises(ConfigError) as context:
                    parse_job_info(text)
                self.assertIn(message, str(context.exception))
                self.assertNotIn("secret-token", str(context.exception))


class ReadCrawlConfigTest(unittest.TestCase):
    def test_redis_defaults(self):
        config = read_crawl_config({"JOB_INFO": json.dumps(VALID_JOB_INFO)})
        self.assertIsNone(config.redis_url)
        self.assertEqual(config.redis_stats_key, "scrapy_stats_3.2.p1")
        self.assertEqual(config.redis_stats_interval, 5.0)
        self.assertIsNone(config.memusage_limit_mb)

    def test_all_variables(self):
        config = read_crawl_config(
            {
                "JOB_INFO": json.dumps(VALID_JOB_INFO),
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "REDIS_STATS_KEY": "stats_key",
                "REDIS_STATS_INTERVAL": "0.5",
                "MEMUSAGE_LIMIT_MB": "512",
            }
        )
        self.assertEqual(config.redis_url, "redis://127.0.0.1:6379/0")
        self.assertEqual(config.redis_stats_key, "stats_key")
        self.assertEqual(config.redis_stats_interval, 0.5)
        self.assertEqual(config.memusage_limit_mb, 512)

    def test_invalid_numbers(self):
        cases = {
            "REDIS_STATS_INTERVAL": ["0", "-1", "soon", "nan", "inf"],
            "MEMUSAGE_LIMIT_MB": ["0", "-5", "1.5", "lots"],
        }
        for name, values in cases.items():
            for value in values:
                with self.subTest(name=name, value=value):
                    with self.assertRaises(ConfigError) as context:
                        read_crawl_config({"JOB_INFO": json.dumps(VALID_JOB_INFO), name: value})
                    self.assertIn(f"invalid {name} {value!r}", str(context.exception))


class JobEnvironmentTest(unittest.TestCase):
    def test_exports_estela_variables_and_env_vars(self):
        environment = job_environment(parse_job_info(json.dumps(VALID_JOB_INFO)))
        self.assertEqual(
            environment,
            {
                "ESTELA_SPIDER_JOB": "3.2.p1",
                "ESTELA_SPIDER_NAME": "quotes",
                "ESTELA_API_HOST": "http://127.0.0.1:8000",
                "ESTELA_AUTH_TOKEN": "secret-token",
                "ESTELA_COLLECTION": "scj5.2.p1",
                "ESTELA_UNIQUE_COLLECTION": "True",
                "FEATURE": "on",
                "DEBUG": "True",
            },
        )

    def test_env_vars_override_estela_variables(self):
        job_info = {**VALID_JOB_INFO, "env_vars": {"ESTELA_SPIDER_NAME": "custom"}}
        environment = job_environment(parse_job_info(json.dumps(job_info)))
        self.assertEqual(environment["ESTELA_SPIDER_NAME"], "custom")


class QuoteItem(scrapy.Item):
    text = scrapy.Field()
    tags = scrapy.Field()


class ToJsonableTest(unittest.TestCase):
    def test_conversions(self):
        moment = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)
        cases = [
            (moment, "2024-01-02T03:04:05.123456"),
            (datetime.date(2024, 1, 2), "2024-01-02"),
            (datetime.timedelta(seconds=90), 90.0),
            (decimal.Decimal("12.50"), 12.5),
            (b"caf\xc3\xa9", "café"),
            (b"\xff", "\ufffd"),
            ({"b", "a"}, ["a", "b"]),
            ((1, "x"), [1, "x"]),
            (float("nan"), None),
            (float("inf"), None),
            ({1: {"when": moment}}, {"1": {"when": "2024-01-02T03:04:05.123456"}}),
            (QuoteItem(text="t", tags={"x"}), {"text": "t", "tags": ["x"]}),
            (object, str(object)),
        ]
        for value, expected in cases:
            with self.subTest(value=value):
                self.assertEqual(to_jsonable(value), expected)

    def test_result_is_strict_json(self):
        value = {"stats": {"start_time": datetime.datetime(2024, 1, 2), "ratio": float("nan")}}
        json.dumps(to_jsonable(value), allow_nan=False)


class SummarizeExceptionTest(unittest.TestCase):
    def test_keeps_innermost_frames_and_exception(self):
        def inner():
            raise ValueError("bad value")

        def outer():
            inner()

        try:
            outer()
        except ValueError as error:
            summary = summarize_exception(error)
        lines = summary.splitlines()
        self.assertEqual(lines[-1], "ValueError: bad value")
        self.assertEqual(lines[-2], '    raise ValueError("bad value")')
        self.assertIn("in inner", lines[-3])
        self.assertIn("in outer", lines[0])
        self.assertEqual(len(lines), 5)
        self.assertNotIn("Traceback", summary)


if __name__ == "__main__":
    unittest.main()
