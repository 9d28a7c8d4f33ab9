"""Optional encryption of everything mailgate stores in Temporal (AES-256-GCM).

Bodies, subjects, recipients, memos and query results pass through this codec, so the
Temporal database and UI see only ciphertext. Each payload names the key that sealed it,
so keys can rotate: encrypt with the first key, decrypt with any configured one.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
# What an unencrypted payload becomes when keys are set: no converter reads this encoding, so a
# start with it never runs, an update is refused and a signal is dropped (Temporal's SDK drops a
# signal it cannot read), instead of plain JSON written straight into Temporal being taken as ours.
REFUSED = b"binary/unencrypted-refused"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """Keys that cannot be used, or a payload sealed with a key that is not configured."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """``id1:base64key,id2:base64key``: 32-byte keys; the first one encrypts."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id.isascii() or not key_id.replace("-", "").replace("_", "").isalnum():
            raise CodecError("each key is KEY_ID:BASE64KEY, with a key id of letters, digits, - and _")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise CodecError(f"key {key_id}: not valid base64") from exc
        if len(key) != 32:
            raise CodecError(f"key {key_id}: {len(key)} bytes; AES-256 needs 32 (openssl rand -base64 32)")
        keys[key_id] = key
    if not keys:
        raise CodecError("no keys given")
    return keys


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: dict[str, bytes], *, refuse_plain: bool = True) -> None:
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = next(iter(keys))
        # Every payload mailgate writes is sealed; one that is not was written by someone else.
        self._refuse_plain = refuse_plain

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._keys[self._active]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), self._active.encode())
            sealed.append(Payload(metadata={"encoding": ENCODING, KEY_ID: self._active.encode()}, data=data))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                opened.append(_refused(payload) if self._refuse_plain else payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._keys.get(key_id)
            if cipher is None:
                raise CodecError(f"payload sealed with key {key_id!r}, which is not configured")
            nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            opened.append(Payload.FromString(cipher.decrypt(nonce, ciphertext, key_id.encode())))
        return opened


def _refused(payload: Payload) -> Payload:
    encoding = payload.metadata.get("encoding", b"").decode(errors="replace")[:50]
    note = f"mailgate refused an unencrypted payload ({encoding}): MAILGATE_ENCRYPTION_KEYS is set"
    return Payload(metadata={"encoding": REFUSED}, data=note.encode())
