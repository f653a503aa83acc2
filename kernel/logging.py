"""One JSON object per log line, carrying the request id. Secrets never reach a log line."""

import json
import logging
import re
from datetime import UTC, datetime

from kernel.request_context import request_id_var

# Whatever a caller logs, bearer keys are masked before the line is written.
SECRET_PATTERN = re.compile(r"(Bearer\s+|sol-(?:int-)?)[A-Za-z0-9._-]+", re.IGNORECASE)
STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# Extra fields that may carry secrets or message contents are dropped outright.
DROPPED_EXTRAS = {"authorization", "headers", "messages", "body", "content", "prompt", "request"}


def mask(text: str) -> str:
    return SECRET_PATTERN.sub(lambda m: m.group(1) + "***", text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "message": mask(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in STANDARD_ATTRS or key in DROPPED_EXTRAS or key.startswith("_"):
                continue
            entry[key] = value if isinstance(value, int | float | bool | None) else mask(str(value))
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)
