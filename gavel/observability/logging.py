"""Logging filters: request, user and task ids on every record; secrets scrubbed."""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from gavel.common.context import request_id_var, task_id_var, user_id_var
from gavel.observability.scrub import scrub_text, scrub_value

_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.user_id = user_id_var.get()
        record.task_id = task_id_var.get()
        return True


class ScrubFilter(logging.Filter):
    """Scrubs the message, its arguments and every ``extra`` attribute."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub_text(str(record.msg))
        if record.args:
            if isinstance(record.args, dict):
                record.args = scrub_value(record.args)
            else:
                record.args = tuple(scrub_value(arg) for arg in record.args)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRIBUTES and isinstance(value, (str, dict, list, tuple)):
                setattr(record, name, scrub_value(value))
        return True


class ScrubbingJsonFormatter(JsonFormatter):
    """JSON lines whose traceback and stack are scrubbed as well: an exception's message can
    carry what the message and extras may not. (A filter cannot do it without taking the
    exception away from every other handler of the record.)"""

    def formatException(self, ei: Any) -> Any:  # noqa: N802 - logging.Formatter's name
        return _scrub_lines(super().formatException(ei))

    def formatStack(self, stack_info: Any) -> Any:  # noqa: N802 - logging.Formatter's name
        return _scrub_lines(super().formatStack(stack_info))


def _scrub_lines(formatted: str | list[str]) -> str | list[str]:
    if isinstance(formatted, list):
        return [scrub_text(line) for line in formatted]
    return scrub_text(formatted)
