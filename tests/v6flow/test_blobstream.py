"""The streamed blob codec (v6flow._blobstream): base64 in any chunking, both ways."""

from __future__ import annotations

import base64
import itertools
import os
import random

import pytest

from v6flow._blobstream import Base64Decoder, Base64Encoder, encoded_size, transform
from v6flow.errors import DeserializationError


def pieces(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at random places (empty pieces included)."""
    rng = random.Random(seed)
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(20))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 1000, 65537])
def test_encoding_in_pieces_is_standard_base64(size: int) -> None:
    """Whatever the chunking, the encoder writes what base64.b64encode writes."""
    data = os.urandom(size)
    for seed in range(5):
        assert b"".join(transform(pieces(data, seed), Base64Encoder())) == \
            base64.b64encode(data)
    assert encoded_size(size) == len(base64.b64encode(data))


@pytest.mark.parametrize("size", [0, 1, 2, 3, 1000, 65537])
def test_decoding_in_pieces_inverts_encoding(size: int) -> None:
    """Decoding standard base64 cut anywhere gives the bytes back."""
    data = os.urandom(size)
    text = base64.b64encode(data)
    for seed in range(5):
        assert b"".join(transform(pieces(text, seed), Base64Decoder())) == data


def test_an_encrypted_blob_is_refused_by_name() -> None:
    """``base64(EK)$base64(IV)$ciphertext`` is not decoded as base64: the error says why."""
    blob = base64.b64encode(os.urandom(512)) + b"$" + base64.b64encode(os.urandom(16)) + b"$\x00"
    with pytest.raises(DeserializationError, match="encrypted"):
        b"".join(transform([blob], Base64Decoder()))


def test_truncated_or_foreign_text_is_refused() -> None:
    """A stray tail or a character outside the alphabet is a DeserializationError."""
    with pytest.raises(DeserializationError, match="stray"):
        b"".join(transform([b"QUJD", b"RA"], Base64Decoder()))
    with pytest.raises(DeserializationError, match="not base64"):
        b"".join(transform([b"QU*D"], Base64Decoder()))
