"""Conversion of Scrapy items and stats into values that json.dumps accepts."""

import datetime
import decimal
import math
import uuid
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath

from itemadapter import ItemAdapter


def to_jsonable(value):
    """Return a copy of value made only of JSON types.

    Datetimes become ISO 8601 strings, bytes are decoded as UTF-8, sets and
    tuples become lists, items become objects. NaN and infinities become None
    because strict JSON decoders, such as Go's, reject them. Any other object
    becomes its str().
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return to_jsonable(float(value))
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if ItemAdapter.is_item(value):
        return to_jsonable(ItemAdapter(value).asdict())
    if isinstance(value, (set, frozenset)):
        return [to_jsonable(item) for item in _sorted_if_possible(value)]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    return str(value)


def _sorted_if_possible(values):
    # Sorting makes set output stable between runs, but mixed types do not sort.
    try:
        return sorted(values)
    except TypeError:
        return list(values)
