"""Country of an IP address, from an offline MaxMind-format database.

The database file is a setting (`LEADRELAY_GEOIP_DB`, a GeoLite2/GeoIP2
Country or City `.mmdb`); nothing is downloaded at run time. Without a file,
every country is unknown (""). Read with `maxminddb`, MaxMind's own reader.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from functools import lru_cache
from typing import Any

import maxminddb
from django.conf import settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_readers: dict[str, Any] = {}


def _reader() -> Any:
    path = getattr(settings, "LEADRELAY_GEOIP_DB", "")
    if not path:
        return None
    with _lock:
        if path not in _readers:
            try:
                _readers[path] = maxminddb.open_database(path)
            except (OSError, ValueError, maxminddb.InvalidDatabaseError):
                log.warning("GeoIP database %s can't be read: countries will be unknown", path)
                _readers[path] = None
        return _readers[path]


@lru_cache(maxsize=65536)
def _lookup(path: str, ip: str) -> str:
    reader = _reader()
    if reader is None:
        return ""
    try:
        record = reader.get(ipaddress.ip_address(ip))
    except ValueError:
        return ""
    if not isinstance(record, dict):
        return ""
    country = record.get("country") or record.get("registered_country") or {}
    code = country.get("iso_code", "") if isinstance(country, dict) else ""
    return code if isinstance(code, str) and len(code) == 2 else ""


def country_for_ip(ip: str | None) -> str:
    """ISO 3166 alpha-2 code of the IP's country, or "" when unknown."""
    if not ip:
        return ""
    return _lookup(getattr(settings, "LEADRELAY_GEOIP_DB", ""), ip)
