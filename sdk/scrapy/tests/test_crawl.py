"""estela-crawl run as a subprocess on the test project, against local servers."""

import json
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from scrapy import Request
from scrapy.utils.request import fingerprint

from .support import (
    BIN_DIR,
    EXPECTED,
    JOB_KEY,
    PROJECT_DIR,
    PYTHON,
    SITE_DIR,
    TOKEN,
    FakeAPI,
    HashPoller,
    RedisServer,
    SiteServer,
    copy_project,
    free_port,
    job_info,
    run_command,
)

REQUEST_TIME_PATTERN = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}\.\d{3}")
RUNNING_FIELDS = {
    "status": "RUNNING",
    "lifespan": "0:00:00",
    "total_response_bytes": "0",
    "item_count": "0",
    "request_count": "0",
    "proxy_usage_data": "{}",
}
NO_PROXY_USAGE = '{"proxy_name": "", "bytes": 0}'


class QuotesCrawlTest(unittest.TestCase):
    """One quotes crawl with a lost items response, a failed RUNNING PATCH and live Redis stats."""

    @classmethod
    def setUpClass(cls):
        cls.redis_key = f"scrapy_stats_{JOB_KEY}"
        # The delay makes the crawl last about a second, long enough for
        # several Redis writes at a 0.2 s interval.
        with SiteServer(delay=0.3) as site, FakeAPI(
            patch_failures={"RUNNING": [503]}, fail_after_store={"items"}
        ) as api, RedisServer() as redis_server:
            client = redis_server.client()
            cls.hash_at_final_patch = None

            def read_hash_at_final_patch(fields):
                if fields.get("status") == "COMPLETED":
                    cls.hash_at_final_patch = client.hgetall(cls.redis_key)
                    cls.ttl_at_final_patch = client.ttl(cls.redis_key)

            api.on_patch = read_hash_at_final_patch
            with HashPoller(client, cls.redis_key) as poller:
                cls.started = time.time()
                cls.process = run_command(
                    "estela-crawl",
                    {
                        "JOB_INFO": job_info(api.url, "quotes", {"base_url": site.url}),
                        "REDIS_URL": redis_server.url,
                        "REDIS_STATS_KEY": cls.redis_key,
                        "REDIS_STATS_INTERVAL": "0.2",
                    },
                )
                cls.finished = time.time()
            cls.redis_key_exists_after = client.exists(cls.redis_key)
        cls.site_url = site.url
        cls.api = api
        cls.snapshots = poller.snapshots

    def test_exit_status_zero(self):
        self.assertEqual(self.process.returncode, 0, self.process.stderr[-3000:])

    def test_only_known_endpoints_called(self):
        self.assertEqual(self.api.unexpected, [])

    def test_items_arrive_once_in_order(self):
        self.assertEqual(self.api.records("items"), EXPECTED["quotes"])

    def test_lost_response_retried_with_same_batch_id(self):
        items_attempts = [attempt for attempt in self.api.ingest_attempts if attempt["kind"] == "items"]
        first = items_attempts[0]
        self.assertEqual(first["code"], 503)
        retries = [attempt for attempt in items_attempts if attempt["batch_id"] == first["batch_id"]]
        self.assertEqual([attempt["code"] for attempt in retries], [503, 200])
        self.assertEqual(retries[0]["records"], retries[1]["records"])

    def test_ingest_requests_carry_token_and_json(self):
        for attempt in self.api.ingest_attempts:
            self.assertEqual(attempt["authorization"], f"Token {TOKEN}")
            self.assertEqual(attempt["content_type"], "application/json")

    def test_batch_ids_are_uuid4_hex(self):
        for batch_id in self.api.stored_batches:
            self.assertRegex(batch_id, r"^[0-9a-f]{32}$")

    def test_request_records(self):
        records = self.api.records("requests")
        urls = [f"{self.site_url}/quotes/page/{page}.html" for page in (1, 2, 3)]
        self.assertEqual([record["url"] for record in records], urls)

        for record, url, page in zip(records, urls, (1, 2, 3)):
            self.assertEqual(
                set(record), {"url", "status", "method", "duration", "time", "response_size", "fingerprint"}
            )
            self.assertEqual(record["status"], 200)
            self.assertEqual(record["method"], "GET")
            self.assertIsInstance(record["duration"], int)
            # The site server sleeps 0.3 s before each response.
            self.assertGreaterEqual(record["duration"], 250)
            self.assertRegex(record["time"], REQUEST_TIME_PATTERN)
            page_size = (SITE_DIR / "quotes" / "page" / f"{page}.html").stat().st_size
            self.assertEqual(record["response_size"], page_size)
            # The project sets REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7",
            # which is what scrapy.utils.request.fingerprint() computes.
            self.assertEqual(record["fingerprint"], fingerprint(Request(url)).hex())

    def test_log_records(self):
        records = self.api.records("logs")
        lines = [record["log"] for record in records]
        self.assertIn("[quotes] INFO: parsed page 1", lines)
        self.assertIn("[quotes] INFO: parsed page 3", lines)
        self.assertIn("[scrapy.core.engine] INFO: Spider opened", lines)
        self.assertTrue(any("] INFO: " in line for line in lines))
        self.assertFalse([line for line in lines if "] DEBUG: " in line])
        for record in records:
            self.assertEqual(set(record), {"log", "datetime"})
            self.assertIsInstance(record["datetime"], float)
            self.assertGreaterEqual(record["datetime"], self.started)
            self.assertLessEqual(record["datetime"], self.finished)

    def test_retry_warning_of_status_update_logged(self):
        lines = [record["log"] for record in self.api.records("logs")]
        retry_lines = [line for line in lines if line.startswith("[estela_scrapy.api] WARNING: status update RUNNING")]
        self.assertEqual(len(retry_lines), 1)

    def test_stats_record(self):
        records = self.api.records("stats")
        self.assertEqual(len(records), 1)
        stats = records[0]
        self.assertEqual(stats["item_scraped_count"], 12)
        self.assertEqual(stats["downloader/request_count"], 3)
        self.assertEqual(stats["finish_reason"], "finished")
        self.assertIsInstance(stats["elapsed_time_seconds"], float)
        self.assertRegex(stats["start_time"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
        self.assertRegex(stats["finish_time"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")

    def test_patch_sequence(self):
        self.assertEqual(self.api.patch_statuses(), ["RUNNING", "RUNNING", "COMPLETED"])
        self.assertEqual([patch["code"] for patch in self.api.patches], [503, 200, 200])
        for patch in self.api.patches:
            self.assertEqual(patch["authorization"], f"Token {TOKEN}")
            self.assertEqual(patch["content_type"], "application/x-www-form-urlencoded")
        self.assertEqual(self.api.patches[1]["fields"], RUNNING_FIELDS)

    def test_final_patch_counters(self):
        fields = self.api.patches[-1]["fields"]
        stats = self.api.records("stats")[0]
        self.assertEqual(
            set(fields),
            {"status", "lifespan", "total_response_bytes", "item_count", "request_count", "proxy_usage_data"},
        )
        self.assertEqual(fields["item_count"], "12")
        self.assertEqual(fields["request_count"], "3")
        self.assertEqual(fields["total_response_bytes"], str(stats["downloader/response_bytes"]))
        self.assertRegex(fields["lifespan"], r"^\d+$")
        self.assertLessEqual(int(fields["lifespan"]), self.finished - self.started + 1)
        self.assertEqual(fields["proxy_usage_data"], NO_PROXY_USAGE)

    def test_final_patch_after_every_batch(self):
        kinds = [kind for _sequence, kind, _detail in self.api.events]
        self.assertEqual(kinds[-1], "patch")
        self.assertEqual(self.api.events[-1][2], "COMPLETED")
        self.assertEqual(kinds.count("patch"), 3)
        self.assertEqual(kinds[0], "patch", "the RUNNING PATCH must come before any batch")

    def test_redis_hash_written_during_crawl(self):
        self.assertGreaterEqual(len(self.snapshots), 2)
        last = self.snapshots[-1]
        decoded = {name: json.loads(value) for name, value in last.items()}
        self.assertIn("elapsed_time_seconds", decoded)
        self.assertIsInstance(decoded["elapsed_time_seconds"], (int, float))
        self.assertRegex(decoded["start_time"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
        self.assertIsInstance(decoded["log_count/INFO"], int)

    def test_redis_hash_tracks_progress(self):
        scraped = [json.loads(snapshot.get("item_scraped_count", "0")) for snapshot in self.snapshots]
        self.assertEqual(scraped, sorted(scraped))
        self.assertGreater(max(scraped), 0)

    def test_redis_hash_final_until_the_final_report(self):
        # The API shows the hash's counters for a RUNNING job, so the hash stays,
        # with the final counters and an expiry, until the COMPLETED report.
        self.assertIsNotNone(self.hash_at_final_patch)
        self.assertEqual(json.loads(self.hash_at_final_patch["item_scraped_count"]), 12)
        self.assertGreater(self.ttl_at_final_patch, 0)

    def test_redis_hash_deleted_after_the_final_report(self):
        self.assertEqual(self.redis_key_exists_after, 0)


class BooksCrawlTest(unittest.TestCase):
    """books crawls: one that completes although the API rejects its final PATCH, one without category."""

    @classmethod
    def setUpClass(cls):
        with SiteServer() as site, FakeAPI(patch_failures={"COMPLETED": [400]}) as api:
            cls.process = run_command(
                "estela-crawl",
                {"JOB_INFO": job_info(api.url, "books", {"base_url": site.url, "category": "poetry"})},
            )
        cls.api = api
        with SiteServer() as site, FakeAPI() as api:
            cls.failed_process = run_command(
                "estela-crawl", {"JOB_INFO": job_info(api.url, "books", {"base_url": site.url})}
            )
        cls.failed_api = api

    def test_poetry_items(self):
        self.assertEqual(self.api.records("items"), EXPECTED["books"]["poetry"])

    def test_rejected_final_patch_not_retried(self):
        self.assertEqual(self.api.patch_statuses(), ["RUNNING", "COMPLETED"])
        self.assertEqual(self.api.patches[-1]["code"], 400)

    def test_rejected_final_patch_keeps_exit_zero(self):
        self.assertEqual(self.process.returncode, 0, self.process.stderr[-3000:])
        self.assertIn("Job is stopped", self.process.stderr)

    def test_missing_category_exits_one(self):
        self.assertEqual(self.failed_process.returncode, 1, self.failed_process.stderr[-3000:])

    def test_missing_category_patches_error(self):
        # The spider never opened, so no RUNNING status was sent.
        self.assertEqual(self.failed_api.patch_statuses(), ["ERROR"])
        fields = self.failed_api.patches[0]["fields"]
        self.assertEqual(fields["item_count"], "0")
        self.assertEqual(fields["request_count"], "0")
        self.assertEqual(fields["proxy_usage_data"], NO_PROXY_USAGE)

    def test_missing_category_error_reason(self):
        reason = self.failed_api.patches[0]["fields"]["error_reason"]
        self.assertTrue(
            reason.endswith("ValueError: missing spider argument category, "
                            "pass it as -a category=fiction or -a category=poetry"),
            reason,
        )
        self.assertIn('books.py", line', reason)
        self.assertNotIn("Traceback (most recent call last)", reason)

    def test_missing_category_logs_traceback(self):
        lines = [record["log"] for record in self.failed_api.records("logs")]
        failures = [line for line in lines if line.startswith("[estela_scrapy.crawl] ERROR: crawl of spider books failed")]
        self.assertEqual(len(failures), 1)
        self.assertIn("Traceback (most recent call last):", failures[0])
        self.assertIn("raise ValueError(", failures[0])

    def test_missing_category_sends_no_items_or_stats(self):
        self.assertEqual(self.failed_api.records("items"), [])
        self.assertEqual(self.failed_api.records("stats"), [])


class CrawlFailureTest(unittest.TestCase):
    """estela-crawl runs that end in ERROR or never start."""

    def test_unknown_spider_patches_error(self):
        with FakeAPI() as api:
            process = run_command("estela-crawl", {"JOB_INFO": job_info(api.url, "nope")})
        self.assertEqual(process.returncode, 1, process.stderr[-3000:])
        self.assertEqual(api.patch_statuses(), ["ERROR"])
        self.assertEqual(
            api.patches[0]["fields"]["error_reason"],
            "spider 'nope' not found in the project, which has the spiders: books, quotes",
        )

    def test_broken_project_patches_error(self):
        with FakeAPI() as api, tempfile.TemporaryDirectory() as directory:
            project = copy_project(Path(directory) / "project")
            (project / "sitecrawl" / "spiders" / "broken.py").write_text("import missing_module_for_test\n")
            process = run_command("estela-crawl", {"JOB_INFO": job_info(api.url, "quotes")}, cwd=project)
        self.assertEqual(process.returncode, 1, process.stderr[-3000:])
        self.assertEqual(api.patch_statuses(), ["ERROR"])
        reason = api.patches[0]["fields"]["error_reason"]
        self.assertTrue(reason.endswith("ModuleNotFoundError: No module named 'missing_module_for_test'"), reason)
        self.assertIn('broken.py", line 1, in <module>', reason)
        self.assertIn("ERROR: crawl of spider quotes failed", process.stderr)
        self.assertIn("ModuleNotFoundError: No module named 'missing_module_for_test'", process.stderr)

    def test_memory_limit_patches_error(self):
        # A Scrapy process uses tens of MB at startup, far over a 1 MiB limit.
        with SiteServer() as site, FakeAPI() as api:
            process = run_command(
                "estela-crawl",
                {"JOB_INFO": job_info(api.url, "quotes", {"base_url": site.url}), "MEMUSAGE_LIMIT_MB": "1"},
                timeout=30,
            )
        self.assertEqual(process.returncode, 1, process.stderr[-3000:])
        self.assertEqual(api.patch_statuses(), ["RUNNING", "ERROR"])
        reason = api.patches[-1]["fields"]["error_reason"]
        self.assertIn("MEMUSAGE_LIMIT_MB=1", reason)
        self.assertIn("memusage_exceeded", reason)
        self.assertEqual(api.records("stats")[0]["finish_reason"], "memusage_exceeded")

    def test_unreachable_redis_does_not_stop_crawl(self):
        with SiteServer() as site, FakeAPI() as api:
            process = run_command(
                "estela-crawl",
                {
                    "JOB_INFO": job_info(api.url, "books", {"base_url": site.url, "category": "fiction"}),
                    "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                    "REDIS_STATS_INTERVAL": "0.1",
                },
            )
        self.assertEqual(process.returncode, 0, process.stderr[-3000:])
        self.assertEqual(api.patch_statuses(), ["RUNNING", "COMPLETED"])
        self.assertEqual(api.records("items"), EXPECTED["books"]["fiction"])
        lines = [record["log"] for record in api.records("logs")]
        warnings = [line for line in lines if line.startswith("[estela_scrapy.redis_stats] WARNING: ")]
        self.assertEqual(len(warnings), 1, "a Redis outage must log one line, not one per write")
        self.assertIn(f"scrapy_stats_{JOB_KEY} in Redis failed", warnings[0])

    def test_invalid_job_info_exits_two(self):
        cases = {
            "missing": (None, "missing environment variable JOB_INFO"),
            "not an object": ('["quotes"]', "must be a JSON object starting with '{'"),
            "bad JSON": ("{spider: quotes}", "not valid JSON"),
            "no key": (json.dumps({"spider": "q", "api_host": "http://127.0.0.1:9", "auth_token": "t"}),
                       "missing or empty string field 'key'"),
            "bad key": (json.dumps({"spider": "q", "api_host": "http://127.0.0.1:9", "auth_token": "t", "key": "1.2"}),
                        "expected <jid>.<sid>.<pid>"),
        }
        for name, (value, message) in cases.items():
            with self.subTest(name):
                env = {} if value is None else {"JOB_INFO": value}
                process = run_command("estela-crawl", env)
                self.assertEqual(process.returncode, 2)
                self.assertEqual(process.stderr.count("\n"), 1, process.stderr)
                self.assertTrue(process.stderr.startswith("estela-crawl: "), process.stderr)
                self.assertIn(message, process.stderr)
                self.assertNotIn('"auth_token"', process.stderr)


class CrawlStopTest(unittest.TestCase):
    def test_sigterm_closes_spider_and_reports(self):
        # Pages after the first wait for the gate, so SIGTERM, sent once page 1's items
        # arrive, comes while page 2 is in flight; Scrapy finishes it and stops.
        gate = threading.Event()
        with SiteServer(gate=gate) as site, FakeAPI() as api:
            process = subprocess.Popen(
                [PYTHON, str(BIN_DIR / "estela-crawl")],
                cwd=PROJECT_DIR,
                env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
                     "JOB_INFO": job_info(api.url, "quotes", {"base_url": site.url})},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 20
            while len(api.records("items")) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            gate.set()
            _stdout, stderr = process.communicate(timeout=60)

        self.assertEqual(process.returncode, 0, stderr[-3000:])
        self.assertEqual(api.patch_statuses(), ["RUNNING", "COMPLETED"])
        self.assertEqual(api.records("stats")[0]["finish_reason"], "shutdown")
        items = api.records("items")
        self.assertEqual(items, EXPECTED["quotes"][: len(items)])
        self.assertLess(len(items), len(EXPECTED["quotes"]))
        self.assertEqual(api.patches[-1]["fields"]["item_count"], str(len(items)))


if __name__ == "__main__":
    unittest.main()
