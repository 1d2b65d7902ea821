"""BatchSender buffering and EstelaAPI retries against the fake API."""

import json
import threading
import time
import unittest

from estela_scrapy.api import EstelaAPI
from estela_scrapy.ingest import Batch, BatchSender
from estela_scrapy.job import JobKey

from .support import JOB_KEY, TOKEN, FakeAPI, free_port

FAST_RETRIES = (0.01, 0.01)


class RecordingSend:
    """send() for BatchSender that stores each batch's decoded body."""

    def __init__(self, accept=True, delay=0.0):
        self.bodies = []
        self.accept = accept
        self.delay = delay
        self.threads = set()
        self.lock = threading.Lock()

    def __call__(self, batch):
        time.sleep(self.delay)
        with self.lock:
            self.bodies.append(json.loads(batch.body()))
            self.threads.add(threading.current_thread().name)
        return self.accept

    def records(self, kind):
        return [record for body in self.bodies if body["type"] == kind for record in body["records"]]


class BatchTest(unittest.TestCase):
    def test_body_format(self):
        batch = Batch(kind="items", records=['{"a": 1}', '{"b": "\\u00e9"}'])
        body = json.loads(batch.body())
        self.assertEqual(body, {"type": "items", "batch_id": batch.batch_id, "records": [{"a": 1}, {"b": "é"}]})
        self.assertRegex(batch.batch_id, r"^[0-9a-f]{32}$")

    def test_batch_ids_differ(self):
        self.assertNotEqual(Batch("items", []).batch_id, Batch("items", []).batch_id)


class BatchSenderTest(unittest.TestCase):
    def test_cuts_batch_at_max_records(self):
        send = RecordingSend()
        sender = BatchSender(send, max_records=3, flush_interval=60)
        sender.start()
        for number in range(7):
            sender.add("items", {"n": number})
        sender.close()
        self.assertEqual([len(body["records"]) for body in send.bodies], [3, 3, 1])
        self.assertEqual(send.records("items"), [{"n": number} for number in range(7)])
        self.assertEqual(send.threads, {"estela-ingest"})
        self.assertEqual(sender.sent_records["items"], 7)

    def test_cuts_batch_at_max_bytes(self):
        record = {"log": "x" * 60, "datetime": 1.0}
        record_bytes = len(json.dumps(record))
        send = RecordingSend()
        # Two records reach the limit, one does not.
        sender = BatchSender(send, max_bytes=2 * record_bytes, flush_interval=60)
        sender.start()
        for _ in range(5):
            sender.add("logs", record)
        sender.close()
        self.assertEqual([len(body["records"]) for body in send.bodies], [2, 2, 1])

    def test_flushes_on_interval(self):
        send = RecordingSend()
        sender = BatchSender(send, flush_interval=0.1)
        sender.start()
        sender.add("requests", {"url": "http://127.0.0.1/"})
        deadline = time.monotonic() + 5
        while not send.bodies and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(send.records("requests"), [{"url": "http://127.0.0.1/"}])
        sender.close()
        self.assertEqual(len(send.bodies), 1)

    def test_close_sends_every_type(self):
        send = RecordingSend()
        sender = BatchSender(send, flush_interval=60)
        sender.start()
        for kind in ("items", "requests", "logs", "stats"):
            sender.add(kind, {"kind": kind})
        sender.close()
        self.assertEqual(sorted(body["type"] for body in send.bodies), ["items", "logs", "requests", "stats"])

    def test_keeps_order_under_slow_send(self):
        # A slow send fills the pending queue, so add() must block instead of dropping.
        send = RecordingSend(delay=0.005)
        sender = BatchSender(send, max_records=2, flush_interval=0.01, max_pending=2)
        sender.start()
        for number in range(40):
            sender.add("items", {"n": number})
        sender.close()
        self.assertEqual(send.records("items"), [{"n": number} for number in range(40)])

    def test_counts_rejected_and_late_records(self):
        sender = BatchSender(RecordingSend(accept=False), flush_interval=60)
        sender.start()
        sender.add("items", {"n": 1})
        sender.add("items", {"n": 2})
        sender.close()
        sender.add("items", {"n": 3})
        self.assertEqual(sender.dropped_records["items"], 3)
        self.assertEqual(sender.sent_records["items"], 0)

    def test_send_exception_does_not_stop_thread(self):
        calls = []

        def send(batch):
            calls.append(batch.kind)
            if len(calls) == 1:
                raise RuntimeError("boom")
            return True

        sender = BatchSender(send, max_records=1, flush_interval=60)
        sender.start()
        sender.add("items", {"n": 1})
        sender.add("items", {"n": 2})
        with self.assertLogs("estela_scrapy.ingest", level="ERROR"):
            sender.close()
        self.assertEqual(calls, ["items", "items"])
        self.assertEqual(sender.dropped_records["items"], 1)
        self.assertEqual(sender.sent_records["items"], 1)

    def test_rejects_unknown_type(self):
        sender = BatchSender(RecordingSend())
        with self.assertRaises(ValueError):
            sender.add("pages", {})


class EstelaAPITest(unittest.TestCase):
    key = JobKey.parse(JOB_KEY)

    def test_retries_patch_after_5xx(self):
        with FakeAPI(patch_failures={"RUNNING": [503, 502]}) as api:
            client = EstelaAPI(api.url, TOKEN, status_retry_delays=FAST_RETRIES)
            with self.assertLogs("estela_scrapy.api", level="WARNING") as logs:
                accepted = client.update_job(self.key, [("status", "RUNNING")])
        self.assertTrue(accepted)
        self.assertEqual([patch["code"] for patch in api.patches], [503, 502, 200])
        self.assertEqual(len(logs.records), 2)

    def test_gives_up_after_last_attempt(self):
        with FakeAPI(patch_failures={"RUNNING": [503, 503, 503, 503]}) as api:
            client = EstelaAPI(api.url, TOKEN, status_retry_delays=FAST_RETRIES)
            with self.assertLogs("estela_scrapy.api", level="WARNING") as logs:
                accepted = client.update_job(self.key, [("status", "RUNNING")])
        self.assertFalse(accepted)
        self.assertEqual(len(api.patches), 3)
        self.assertIn("failed after 3 attempts", logs.records[-1].getMessage())

    def test_does_not_retry_4xx(self):
        with FakeAPI(patch_failures={"COMPLETED": [400]}) as api:
            client = EstelaAPI(api.url, TOKEN, status_retry_delays=FAST_RETRIES)
            with self.assertLogs("estela_scrapy.api", level="ERROR") as logs:
                accepted = client.update_job(self.key, [("status", "COMPLETED")])
        self.assertFalse(accepted)
        self.assertEqual(len(api.patches), 1)
        self.assertIn('{"error": "Job is stopped"}', logs.records[0].getMessage())

    def test_retries_connection_errors(self):
        client = EstelaAPI(f"http://127.0.0.1:{free_port()}", TOKEN, ingest_retry_delays=FAST_RETRIES)
        with self.assertLogs("estela_scrapy.api", level="WARNING") as logs:
            accepted = client.send_batch(self.key, "items", "b1", b"{}")
        self.assertFalse(accepted)
        self.assertEqual([record.levelname for record in logs.records], ["WARNING", "WARNING", "ERROR"])
        self.assertIn("ConnectionError", logs.records[0].getMessage())

    def test_ingest_retry_reuses_batch_id(self):
        batch = Batch(kind="items", records=['{"n": 1}'])
        with FakeAPI(fail_after_store={"items"}) as api:
            client = EstelaAPI(api.url, TOKEN, ingest_retry_delays=FAST_RETRIES)
            with self.assertLogs("estela_scrapy.api", level="WARNING"):
                accepted = client.send_batch(self.key, batch.kind, batch.batch_id, batch.body())
        self.assertTrue(accepted)
        self.assertEqual(
            [(attempt["batch_id"], attempt["code"]) for attempt in api.ingest_attempts],
            [(batch.batch_id, 503), (batch.batch_id, 200)],
        )
        self.assertEqual(api.records("items"), [{"n": 1}])

    def test_token_never_logged(self):
        with FakeAPI(patch_failures={"RUNNING": [401]}) as api:
            client = EstelaAPI(api.url, TOKEN, status_retry_delays=FAST_RETRIES)
            with self.assertLogs("estela_scrapy.api", level="ERROR") as logs:
                client.update_job(self.key, [("status", "RUNNING")])
        self.assertNotIn(TOKEN, "\n".join(logs.output))


if __name__ == "__main__":
    unittest.main()
