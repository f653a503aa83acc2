"""One JSON object per log line, carrying the request id. Secrets never reach a log line."""

import json
import logging
import logging.config
import re
from datetime import UTC, datetime

from kernel.request_context import request_id_var

# Whatever a caller logs, bearer keys are masked before the line is written.
SECRET_PATTERN = re.compile(r"(Bearer\s+|sol-(?:int-)?)[A-Za-z0-9._-]+", re.IGNORECASE)
# Tokens in paths (Django's "Bad Request: <path>" warnings, the server's access log): a sign-in
# link's, a password reset's (its user id and token); and any JWT (LibreChat's access tokens).
SECRET_PATH_PATTERN = re.compile(r"(/entrar/link/|/senha/(?!enviada/|concluida/))[^\s?#\"']+")
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# The web server's loggers, which keep their own handlers: uvicorn's access log is off unless the
# operator turns it on (scripts/serve.sh --no-access-log), and then it is redacted too.
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")
STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# Extra fields that may carry secrets or message contents are dropped outright.
DROPPED_EXTRAS = {"authorization", "headers", "messages", "body", "content", "prompt", "request"}


def mask(text: str) -> str:
    text = SECRET_PATTERN.sub(lambda m: m.group(1) + "***", text)
    text = SECRET_PATH_PATTERN.sub(lambda m: m.group(1) + "***", text)
    return JWT_PATTERN.sub("eyJ***", text)


class SecretFilter(logging.Filter):
    """Masks secrets in a record's message and arguments, whatever handler then formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def logging_configure(config: dict) -> None:
    """Django's LOGGING_CONFIG: the settings' dictConfig, then the secret filter on the server's
    loggers (configuring them in LOGGING would replace their handlers and turn the access log on)."""
    logging.config.dictConfig(config)
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretFilter) for f in logger.filters):
            logger.addFilter(SecretFilter())


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
