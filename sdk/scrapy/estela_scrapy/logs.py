"""Logging handler that turns Python log records into "logs" job data records."""

import logging

from .ingest import BatchSender

# The API filters a job's logs by level with the substring "] LEVEL: ".
LOG_FORMAT = "[%(name)s] %(levelname)s: %(message)s"


class IngestLogHandler(logging.Handler):
    """Handler that sends each record as {"log": "[name] LEVEL: message", "datetime": epoch}.

    It skips records logged by the sender thread itself, such as its retry
    warnings or urllib3's debug lines, because sending those would log more.
    """

    def __init__(self, sender: BatchSender, level=logging.INFO):
        super().__init__(level)
        self._sender = sender
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if self._sender.in_sender_thread():
            return
        try:
            text = self.format(record)
            self._sender.add("logs", {"log": text, "datetime": record.created})
        except Exception:
            self.handleError(record)
