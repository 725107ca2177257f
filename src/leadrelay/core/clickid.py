"""Self-describing click ids.

A click id is issued by the redirect before the click row is written, so it has
to stand on its own (ARCHITECTURE principle 1): it carries the tracking link,
offer and affiliate ids, it is ordered by time, and it is signed so nobody can
make one up or change the ids inside.

Layout of the binary form, then encoded as lowercase Crockford base32 (an
alphabet in ascending ASCII order, so string order follows byte order):

    version (1 byte, 0x01)
    issued_at in milliseconds since the Unix epoch (6 bytes, big endian)
    random (4 bytes)         - two clicks in one millisecond still differ
    link_id, offer_id, affiliate_id (unsigned LEB128 varints)
    subs (optional)          - a byte whose bits 0..4 say which of sub1..sub5
                               follow, then each as varint length + UTF-8
    mac (10 bytes)           - HMAC-SHA256 over everything above, truncated

Sub ids ride in the id because a visitor's click can set them (`?sub1=…`):
with them inside, a lead is attributed to the right sub ids even if its
click row was never written. Links with no per-click sub ids keep ids short.

Written by hand: no maintained library does signed, ordered, self-describing
ids of this shape (ULIDs carry no payload; itsdangerous adds its own layout).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

VERSION = 1
MAC_BYTES = 10
# 31 bytes of ids and MAC, plus at most 5 sub ids of 100 bytes: 1,100 characters.
MAX_ENCODED_LENGTH = 1100
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
# Crockford: letters easily misread decode to the digits they look like.
_DECODE.update({"o": 0, "i": 1, "l": 1})


class ClickIdError(ValueError):
    """The click id is malformed or its signature does not match."""


SUB_NAMES = ("sub1", "sub2", "sub3", "sub4", "sub5")
MAX_SUB_BYTES = 100


@dataclass(frozen=True)
class ClickIdentity:
    click_id: str
    issued_at: datetime
    link_id: int
    offer_id: int
    affiliate_id: int
    subs: dict[str, str] = field(default_factory=dict)


def _key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"leadrelay.click-id.v1", hashlib.sha256).digest()


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("ids are non-negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ClickIdError("truncated click id")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _b32encode(data: bytes) -> str:
    bits = int.from_bytes(data, "big")
    nbits = len(data) * 8
    pad = (-nbits) % 5
    bits <<= pad
    nchars = (nbits + pad) // 5
    return "".join(_ALPHABET[(bits >> (5 * (nchars - 1 - i))) & 31] for i in range(nchars))


def _b32decode(text: str) -> bytes:
    nbytes = len(text) * 5 // 8
    pad = len(text) * 5 - nbytes * 8
    bits = 0
    for char in text:
        try:
            bits = (bits << 5) | _DECODE[char]
        except KeyError:
            raise ClickIdError("click id has a character outside its alphabet") from None
    if bits & ((1 << pad) - 1):
        raise ClickIdError("click id has stray bits")
    return (bits >> pad).to_bytes(nbytes, "big")


def _subs_encode(subs: dict[str, str]) -> bytes:
    present = [(i, name) for i, name in enumerate(SUB_NAMES) if subs.get(name)]
    if not present:
        return b""
    out = bytearray([sum(1 << i for i, _ in present)])
    for _, name in present:
        raw = subs[name].encode()[:MAX_SUB_BYTES]
        # Cut on a character boundary so the value decodes.
        raw = raw.decode("utf-8", "ignore").encode()
        out += _varint(len(raw)) + raw
    return bytes(out)


def click_id_issue(
    *,
    link_id: int,
    offer_id: int,
    affiliate_id: int,
    at: datetime | None = None,
    subs: dict[str, str] | None = None,
) -> ClickIdentity:
    """Make a new signed click id for a click on `link_id`, carrying its sub ids."""
    issued_ms = int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000
    body = (
        bytes([VERSION])
        + issued_ms.to_bytes(6, "big")
        + os.urandom(4)
        + _varint(link_id)
        + _varint(offer_id)
        + _varint(affiliate_id)
        + _subs_encode(subs or {})
    )
    mac = hmac.new(_key(), body, hashlib.sha256).digest()[:MAC_BYTES]
    return click_id_verify(_b32encode(body + mac))


def click_id_verify(click_id: str) -> ClickIdentity:
    """Decode and check a click id; raise ClickIdError if it is not one we issued."""
    text = click_id.strip().lower()
    if not text or len(text) > MAX_ENCODED_LENGTH:
        raise ClickIdError("click id has the wrong length")
    raw = _b32decode(text)
    if len(raw) < 1 + 6 + 4 + 3 + MAC_BYTES:
        raise ClickIdError("click id is too short")
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    expected = hmac.new(_key(), body, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise ClickIdError("click id signature does not match")
    if body[0] != VERSION:
        raise ClickIdError("unknown click id version")
    issued_ms = int.from_bytes(body[1:7], "big")
    pos = 11
    link_id, pos = _read_varint(body, pos)
    offer_id, pos = _read_varint(body, pos)
    affiliate_id, pos = _read_varint(body, pos)
    subs: dict[str, str] = {}
    if pos < len(body):
        present = body[pos]
        pos += 1
        if not present or present >> len(SUB_NAMES):
            raise ClickIdError("click id has a bad sub id mask")
        for i, name in enumerate(SUB_NAMES):
            if present & (1 << i):
                length, pos = _read_varint(body, pos)
                if length > MAX_SUB_BYTES or pos + length > len(body):
                    raise ClickIdError("click id has a bad sub id")
                try:
                    subs[name] = body[pos : pos + length].decode()
                except UnicodeDecodeError:
                    raise ClickIdError("click id has a bad sub id") from None
                pos += length
    if pos != len(body):
        raise ClickIdError("click id has trailing bytes")
    return ClickIdentity(
        click_id=_b32encode(raw),
        issued_at=datetime.fromtimestamp(issued_ms / 1000, tz=UTC),
        link_id=link_id,
        offer_id=offer_id,
        affiliate_id=affiliate_id,
        subs=subs,
    )
