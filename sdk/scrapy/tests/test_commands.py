"""estela-describe-project and estela-report-deploy run as subprocesses."""

import json
import tempfile
import unittest
from pathlib import Path

from .support import TOKEN, FakeAPI, copy_project, run_command

DEPLOY_PID = "0b5e8a52-9d1c-4c4e-8f0e-2f3c5a6b7c8d"
DEPLOY_ID = "12"
BROKEN_SPIDER = '''import scrapy

from sitecrawl.missing_module import Helper  # this import fails


class BrokenSpider(scrapy.Spider):
    name = "broken"
'''


def break_project(directory):
    """Add a spider module whose import fails to a copy of the test project."""
    project = copy_project(Path(directory) / "project")
    (project / "sitecrawl" / "spiders" / "broken.py").write_text(BROKEN_SPIDER)
    return project


def deploy_env(api_url):
    return {
        "KEY": f"{DEPLOY_PID}.{DEPLOY_ID}",
        "TOKEN": TOKEN,
        "JOB_INFO": json.dumps({"api_host": api_url, "key": DEPLOY_PID, "spider": ""}),
    }


class DescribeProjectTest(unittest.TestCase):
    def test_prints_sorted_spiders(self):
        process = run_command("estela-describe-project", {})
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertEqual(process.stdout, '{"project_type": "scrapy", "spiders": ["books", "quotes"]}\n')

    def test_image_option_prints_image(self):
        process = run_command("estela-describe-project", {"CONTAINER_IMAGE": "registry.local/estela_p1:7"}, args=["--image"])
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertEqual(
            json.loads(process.stdout),
            {"project_type": "scrapy", "spiders": ["books", "quotes"], "image": "registry.local/estela_p1:7"},
        )

    def test_image_option_without_variable(self):
        process = run_command("estela-describe-project", {}, args=["--image"])
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertEqual(json.loads(process.stdout)["image"], "")

    def test_printing_module_keeps_stdout_clean(self):
        with tempfile.TemporaryDirectory() as directory:
            project = copy_project(Path(directory) / "project")
            spider = project / "sitecrawl" / "spiders" / "quotes.py"
            spider.write_text('print("loading quotes")\n' + spider.read_text())
            process = run_command("estela-describe-project", {}, cwd=project)
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertEqual(process.stdout, '{"project_type": "scrapy", "spiders": ["books", "quotes"]}\n')
        self.assertIn("loading quotes", process.stderr)

    def test_directory_without_project_fails(self):
        with tempfile.TemporaryDirectory() as directory:
            process = run_command("estela-describe-project", {}, cwd=directory)
        self.assertEqual(process.returncode, 1)
        self.assertEqual(process.stdout, "")
        self.assertIn("estela-describe-project: scrapy.cfg not found in", process.stderr)

    def test_import_error_shows_traceback_tail(self):
        with tempfile.TemporaryDirectory() as directory:
            process = run_command("estela-describe-project", {}, cwd=break_project(directory))
        self.assertEqual(process.returncode, 1)
        self.assertEqual(process.stdout, "")
        self.assertIn("estela-describe-project: loading the project's spiders failed:", process.stderr)
        self.assertIn('broken.py", line 3, in <module>', process.stderr)
        self.assertIn("ModuleNotFoundError: No module named 'sitecrawl.missing_module'", process.stderr)


class ReportDeployTest(unittest.TestCase):
    def test_success_puts_spider_names(self):
        with FakeAPI() as api:
            process = run_command("estela-report-deploy", deploy_env(api.url))
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertEqual(len(api.puts), 1)
        put = api.puts[0]
        self.assertEqual(put["path"], f"/api/projects/{DEPLOY_PID}/deploys/{DEPLOY_ID}")
        self.assertEqual(put["body"], {"status": "SUCCESS", "spiders_names": ["books", "quotes"]})
        self.assertEqual(put["authorization"], f"Token {TOKEN}")
        self.assertEqual(put["content_type"], "application/json")

    def test_broken_project_puts_failure(self):
        with FakeAPI() as api, tempfile.TemporaryDirectory() as directory:
            process = run_command("estela-report-deploy", deploy_env(api.url), cwd=break_project(directory))
        self.assertEqual(process.returncode, 0, process.stderr)
        body = api.puts[0]["body"]
        self.assertEqual(set(body), {"status", "spiders_names", "error_reason"})
        self.assertEqual(body["status"], "FAILURE")
        self.assertEqual(body["spiders_names"], [])
        self.assertTrue(body["error_reason"].startswith("loading the project's spiders failed:\n"))
        self.assertTrue(
            body["error_reason"].endswith("ModuleNotFoundError: No module named 'sitecrawl.missing_module'"),
            body["error_reason"],
        )

    def test_project_without_spiders_puts_failure(self):
        with FakeAPI() as api, tempfile.TemporaryDirectory() as directory:
            project = copy_project(Path(directory) / "project")
            for spider in ("quotes.py", "books.py"):
                (project / "sitecrawl" / "spiders" / spider).unlink()
            process = run_command("estela-report-deploy", deploy_env(api.url), cwd=project)
        self.assertEqual(process.returncode, 0, process.stderr)
        body = api.puts[0]["body"]
        self.assertEqual(body["status"], "FAILURE")
        self.assertEqual(body["spiders_names"], [])
        self.assertIn("no spiders found in the project", body["error_reason"])

    def test_rejected_put_exits_one(self):
        with FakeAPI(put_status=400) as api:
            process = run_command("estela-report-deploy", deploy_env(api.url))
        self.assertEqual(process.returncode, 1)
        self.assertEqual(len(api.puts), 1, "a 4xx answer must not be retried")
        self.assertIn(f"reporting deploy {DEPLOY_ID} of project {DEPLOY_PID}", process.stderr)

    def test_invalid_environment_exits_two(self):
        cases = {
            "missing KEY": ({"KEY": ""}, "missing environment variable KEY"),
            "bad KEY": ({"KEY": "p1"}, "invalid KEY 'p1': expected <pid>.<did>"),
            "missing TOKEN": ({"TOKEN": ""}, "missing environment variable TOKEN"),
            "missing api_host": ({"JOB_INFO": "{}"}, "missing or empty string field 'api_host'"),
        }
        for name, (override, message) in cases.items():
            with self.subTest(name):
                with FakeAPI() as api:
                    env = deploy_env(api.url)
                    env.update(override)
                    process = run_command("estela-report-deploy", env)
                self.assertEqual(process.returncode, 2)
                self.assertIn(message, process.stderr)
                self.assertEqual(api.puts, [])


if __name__ == "__main__":
    unittest.main()
