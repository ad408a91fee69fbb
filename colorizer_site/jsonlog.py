"""Logs as one JSON object per line, for log collectors in production.

Everything a log call passes as `extra={...}` becomes a field of its own, so a line can be
filtered by job id, status or duration without parsing the message.
"""

import json
import logging
from datetime import UTC, datetime

from gunicorn import glogging

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: extras such as Django's `request` are objects, not JSON values.
        return json.dumps(entry, default=str)


class GunicornLogger(glogging.Logger):
    """Gunicorn's error log and access log in JSON; the access log has one line per request."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = int(str(resp.status).split()[0])  # "200 OK"
        fields = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "status": status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR"),
            # Behind a load balancer the client is here, and the request id if it sets one.
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "request_id": environ.get("HTTP_X_REQUEST_ID"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        message = f"{fields['method']} {fields['path']} {status}"
        self.access_log.info(message, extra=fields)
