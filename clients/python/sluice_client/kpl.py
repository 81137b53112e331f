"""The KPL's aggregated-record format: magic bytes F3 89 9A C2, an AggregatedRecord
protobuf message, and the MD5 of that message. Only the few protobuf wire types the
message uses are read and written here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST = 16


@dataclass(frozen=True)
class UserRecord:
    partition_key: str
    data: bytes
    explicit_hash_key: str | None = None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return _varint(tag << 3 | 2) + _varint(len(payload)) + payload


def _fields(message: bytes):
    """(tag, value) of each field: ints for varints, bytes for length-delimited."""
    i = 0
    while i < len(message):
        key, i = _read_varint(message, i)
        tag, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(message, i)
        elif wire == 2:
            n, i = _read_varint(message, i)
            if i + n > len(message):
                raise ValueError("truncated field")
            value, i = message[i:i + n], i + n
        elif wire == 1:
            value, i = message[i:i + 8], i + 8
        elif wire == 5:
            value, i = message[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield tag, value


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def deaggregate(data: bytes) -> list[UserRecord] | None:
    """The user records of an aggregate; None for an ordinary record (no magic, a wrong
    MD5, or a message that does not parse)."""
    if len(data) < len(MAGIC) + _DIGEST or not data.startswith(MAGIC):
        return None
    message, digest = data[len(MAGIC):-_DIGEST], data[-_DIGEST:]
    if hashlib.md5(message).digest() != digest:
        return None
    try:
        keys, hash_keys, records = [], [], []
        for tag, value in _fields(message):
            if tag == 1:
                keys.append(value.decode())
            elif tag == 2:
                hash_keys.append(value.decode())
            elif tag == 3:
                fields = dict((t, v) for t, v in _fields(value) if t in (1, 2, 3))
                records.append(fields)
        out = []
        for fields in records:
            key = keys[fields[1]]
            hash_key = hash_keys[fields[2]] if 2 in fields else None
            out.append(UserRecord(key, bytes(fields.get(3, b"")), hash_key))
        return out
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, TypeError):
        return None


def aggregate(records: list[tuple[str, bytes]]) -> bytes:
    """One aggregate of (partition key, data) user records."""
    keys: list[str] = []
    body = bytearray()
    for key, data in records:
        if key not in keys:
            keys.append(key)
        record = _varint(1 << 3 | 0) + _varint(keys.index(key)) + _field(3, bytes(data))
        body += _field(3, record)
    message = b"".join(_field(1, k.encode()) for k in keys) + bytes(body)
    return MAGIC + message + hashlib.md5(message).digest()
