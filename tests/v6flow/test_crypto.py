"""End-to-end encryption schemes (v6flow.crypto): round trips, tampering, v4 and WebCrypto."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.reference import ReferencePython
from v6flow import crypto
from v6flow.crypto import Binding, Payload, Scheme
from v6flow.errors import DecryptionError, InvalidKey, NoPrivateKey, TamperedPayload, WrongKey

PLAINTEXT = json.dumps({"method": "echo", "kwargs": {"value": "é ∑ marker"}}).encode()
INPUT = crypto.input_binding(collaboration_id=3, sender=1, recipient=2)


@pytest.fixture(scope="module")
def key() -> crypto.RSAPrivateKey:
    """A 4096-bit key, like every organization's."""
    return crypto.generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> crypto.RSAPrivateKey:
    """Another organization's key."""
    return crypto.generate_private_key(2048)


def _flip(text: str, part: int, separator: str) -> str:
    """``text`` with one bit of base64 part ``part`` flipped (still valid base64)."""
    parts = text.split(separator)
    raw = bytearray(base64.b64decode(parts[part]))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = base64.b64encode(bytes(raw)).decode()
    return separator.join(parts)


# -- plain -------------------------------------------------------------------------------
def test_plain_round_trip() -> None:
    """The plain scheme is standard base64 and decodes back."""
    text = crypto.plain_encrypt(PLAINTEXT)
    assert text == base64.b64encode(PLAINTEXT).decode()
    assert crypto.scheme_of(text) is Scheme.PLAIN
    assert crypto.plain_decrypt(text) == PLAINTEXT


def test_plain_refuses_what_is_not_base64() -> None:
    """A plain payload that is not base64 is refused with DecryptionError."""
    with pytest.raises(DecryptionError, match="not base64"):
        crypto.plain_decrypt("not base64!")


# -- v4 ----------------------------------------------------------------------------------
def test_v4_round_trip(key: crypto.RSAPrivateKey) -> None:
    """v4: key$iv$body with a 684-character wrapped key for 4096-bit keys, and back."""
    text = crypto.v4_encrypt(PLAINTEXT, key.public_key())
    wrapped, iv, _body = text.split("$")
    assert (len(wrapped), len(iv)) == (684, 24)
    assert crypto.scheme_of(text) is Scheme.V4
    assert crypto.check_envelope(text) is Scheme.V4
    assert crypto.v4_decrypt(text, key) == PLAINTEXT


def test_v4_tampering_goes_unnoticed(key: crypto.RSAPrivateKey) -> None:
    """v4 has no integrity check: a flipped ciphertext bit flips the plaintext, silently."""
    text = crypto.v4_encrypt(PLAINTEXT, key.public_key())
    changed = crypto.v4_decrypt(_flip(text, 2, "$"), key)
    assert changed != PLAINTEXT
    assert sum(a != b for a, b in zip(changed, PLAINTEXT, strict=True)) == 1


def test_v4_wrong_key_is_named(key: crypto.RSAPrivateKey,
                               other_key: crypto.RSAPrivateKey) -> None:
    """v4 payload for another key: WrongKey (the unwrapped key is not 32 bytes)."""
    text = crypto.v4_encrypt(PLAINTEXT, other_key.public_key())
    with pytest.raises(WrongKey, match="another key"):
        crypto.v4_decrypt(text, key)


def test_v4_reads_what_the_v4_web_ui_writes(key: crypto.RSAPrivateKey) -> None:
    """v4's UI wraps the content key as base64 text and base64-encodes the plaintext."""
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    content, iv = os.urandom(32), os.urandom(16)
    encryptor = Cipher(algorithms.AES(content), modes.CTR(iv)).encryptor()
    body = encryptor.update(base64.b64encode(PLAINTEXT)) + encryptor.finalize()
    wrapped = key.public_key().encrypt(base64.b64encode(content), padding.PKCS1v15())
    text = "$".join(base64.b64encode(p).decode() for p in (wrapped, iv, body))
    assert crypto.v4_decrypt(text, key) == PLAINTEXT


def test_v4_interoperates_with_vantage6(key: crypto.RSAPrivateKey, tmp_path: Path,
                                        reference_client: ReferencePython) -> None:
    """vantage6 4.15.2's RSACryptor loads our PEM, decrypts ours, and we decrypt its output."""
    pem = tmp_path / "org.pem"
    pem.write_bytes(crypto.private_key_to_pem(key))
    ours = crypto.v4_encrypt(PLAINTEXT, key.public_key())
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from vantage6.common.encryption import RSACryptor\n"
        "c = RSACryptor(Path(sys.argv[1]))\n"
        "theirs = c.encrypt_bytes_to_str(sys.argv[3].encode(), c.public_key_str)\n"
        "print(json.dumps({'decrypted': c.decrypt_str_to_bytes(sys.argv[2]).decode(),"
        " 'theirs': theirs, 'public_key': c.public_key_str}))\n"
    )
    out = reference_client.run_json(script, str(pem), ours, "from vantage6 ∑")
    assert out["decrypted"].encode() == PLAINTEXT
    assert crypto.v4_decrypt(out["theirs"], key).decode() == "from vantage6 ∑"
    assert out["public_key"] == crypto.public_key_to_wire(key)


# -- v6flow-aead-1 -----------------------------------------------------------------------
def test_aead_round_trip(key: crypto.RSAPrivateKey) -> None:
    """AEAD: tag, wrapped key, 12-byte nonce, body+tag; decrypts with the same binding."""
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), INPUT)
    tag, wrapped, nonce, body = text.split(".")
    assert tag == "v6flow-aead-1"
    assert len(base64.b64decode(wrapped)) == 512
    assert len(base64.b64decode(nonce)) == 12
    assert len(base64.b64decode(body)) == len(PLAINTEXT) + 16
    assert crypto.scheme_of(text) is Scheme.AEAD
    assert crypto.check_envelope(text) is Scheme.AEAD
    assert crypto.aead_nonce(text) == nonce
    assert crypto.aead_decrypt(text, key, INPUT) == PLAINTEXT


@pytest.mark.parametrize("part", [2, 3], ids=["nonce", "body"])
def test_aead_refuses_a_flipped_bit(key: crypto.RSAPrivateKey, part: int) -> None:
    """One flipped bit in the nonce or the ciphertext: TamperedPayload, no plaintext."""
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), INPUT)
    with pytest.raises(TamperedPayload, match="authentication failed"):
        crypto.aead_decrypt(_flip(text, part, "."), key, INPUT)


def test_aead_refuses_an_altered_key_part(key: crypto.RSAPrivateKey) -> None:
    """An altered wrapped key does not unwrap (RSA-OAEP): WrongKey, no plaintext."""
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), INPUT)
    with pytest.raises(WrongKey):
        crypto.aead_decrypt(_flip(text, 1, "."), key, INPUT)


def test_aead_refuses_a_truncated_body(key: crypto.RSAPrivateKey) -> None:
    """A body cut short by one byte fails authentication."""
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), INPUT)
    head, body = text.rsplit(".", 1)
    short = base64.b64encode(base64.b64decode(body)[:-1]).decode()
    with pytest.raises(TamperedPayload):
        crypto.aead_decrypt(f"{head}.{short}", key, INPUT)


@pytest.mark.parametrize("moved", [
    crypto.input_binding(collaboration_id=4, sender=1, recipient=2),
    crypto.input_binding(collaboration_id=3, sender=9, recipient=2),
    crypto.input_binding(collaboration_id=3, sender=1, recipient=9),
    Binding(Payload.RESULT, 3, 1, 2, task_id=1, input_nonce="x"),
], ids=["collaboration", "from", "to", "field"])
def test_aead_refuses_a_moved_input(key: crypto.RSAPrivateKey, moved: Binding) -> None:
    """An input moved to another collaboration, sender, recipient or field is refused."""
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), INPUT)
    with pytest.raises(TamperedPayload, match="another"):
        crypto.aead_decrypt(text, key, moved)


@pytest.mark.parametrize("change", ["task_id", "input_nonce"])
def test_aead_binds_a_result_to_its_task_and_input(key: crypto.RSAPrivateKey,
                                                   change: str) -> None:
    """A result of another task, or computed on another input, is refused."""
    binding = crypto.result_binding(collaboration_id=3, task_id=41, sender=2, recipient=1,
                                    input_nonce="AAAAAAAAAAAAAAAA")
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), binding)
    assert crypto.aead_decrypt(text, key, binding) == PLAINTEXT
    other = {"task_id": 42, "input_nonce": "BBBBBBBBBBBBBBBB"}[change]
    moved = Binding(**{**binding.__dict__, change: other})
    with pytest.raises(TamperedPayload, match="task"):
        crypto.aead_decrypt(text, key, moved)


def test_aead_wrong_key_is_named(key: crypto.RSAPrivateKey,
                                 other_key: crypto.RSAPrivateKey) -> None:
    """An AEAD payload for another organization's key: WrongKey."""
    text = crypto.aead_encrypt(PLAINTEXT, other_key.public_key(), INPUT)
    with pytest.raises(WrongKey, match="another key"):
        crypto.aead_decrypt(text, key, INPUT)


def test_aad_is_the_documented_text() -> None:
    """The AAD is exactly the text docs/security.md gives (a browser rebuilds it)."""
    assert INPUT.aad() == b"v6flow-aead-1;field=input;collaboration=3;from=1;to=2"
    result = crypto.result_binding(collaboration_id=3, task_id=7, sender=2, recipient=1,
                                   input_nonce="q83vEjRWeJq83vEj")
    assert result.aad() == (b"v6flow-aead-1;field=result;collaboration=3;task=7;from=2;to=1;"
                            b"input=q83vEjRWeJq83vEj")


def test_aead_wraps_with_oaep_sha256_as_openssl_reads_it(key: crypto.RSAPrivateKey,
                                                         tmp_path: Path) -> None:
    """OpenSSL, told RSA-OAEP with SHA-256 (hash and MGF1), unwraps the content key."""
    pem = tmp_path / "key.pem"
    pem.write_bytes(crypto.private_key_to_pem(key))
    text = crypto.aead_encrypt(PLAINTEXT, key.public_key(), INPUT)
    wrapped = tmp_path / "wrapped.bin"
    wrapped.write_bytes(base64.b64decode(text.split(".")[1]))
    content = subprocess.run(
        ["openssl", "pkeyutl", "-decrypt", "-inkey", str(pem), "-in", str(wrapped),
         "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
         "-pkeyopt", "rsa_mgf1_md:sha256"], capture_output=True, check=True).stdout
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce, body = (base64.b64decode(p) for p in text.split(".")[2:])
    assert AESGCM(content).decrypt(nonce, body, INPUT.aad()) == PLAINTEXT


def test_schemes_are_told_apart() -> None:
    """Plain base64 never looks encrypted; v4 has '$'; AEAD its tag."""
    for size in range(64):
        assert crypto.scheme_of(crypto.plain_encrypt(os.urandom(size))) is Scheme.PLAIN
    assert crypto.scheme_of("a$b$c") is Scheme.V4
    assert crypto.scheme_of("v6flow-aead-1.a.b.c") is Scheme.AEAD
    assert crypto.scheme_of("v6flow-aead-1") is Scheme.PLAIN


@pytest.mark.parametrize("text", [
    "v6flow-aead-1.AAAA.AAAA", "v6flow-aead-1.AAAA.AAAAAAAAAAAAAAAA.AAAA",
    "v6flow-aead-1.AA!A.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAA", "a$b$c", "$AAAA$AAAA",
    "AAAA$AAAA$AAAA",
], ids=["three-parts", "short-body", "not-base64", "v4-not-base64", "v4-no-key", "v4-short-iv"])
def test_malformed_envelopes_are_refused(text: str) -> None:
    """What a server can check without keys: the form of an encrypted payload."""
    with pytest.raises(DecryptionError):
        crypto.check_envelope(text)


def test_decrypt_dispatches_and_needs_a_key(key: crypto.RSAPrivateKey) -> None:
    """decrypt() reads all three schemes; an encrypted one without key is NoPrivateKey."""
    for scheme in Scheme:
        text = crypto.encrypt(PLAINTEXT, scheme, key.public_key(), INPUT)
        assert crypto.scheme_of(text) is scheme
        assert crypto.decrypt(text, key, INPUT) == PLAINTEXT
        if scheme is not Scheme.PLAIN:
            with pytest.raises(NoPrivateKey):
                crypto.decrypt(text, None, INPUT)


# -- keys --------------------------------------------------------------------------------
def test_private_key_pem_is_v4s_format(key: crypto.RSAPrivateKey) -> None:
    """PEM 'BEGIN RSA PRIVATE KEY' (PKCS#1, no passphrase), 4096 bits, and back."""
    pem = crypto.private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    loaded = crypto.private_key_from_pem(pem)
    assert loaded.key_size == 4096
    assert loaded.private_numbers() == key.private_numbers()


def test_public_key_wire_round_trip(key: crypto.RSAPrivateKey) -> None:
    """The API's public_key is base64 of the SubjectPublicKeyInfo PEM, as in v4."""
    wire = crypto.public_key_to_wire(key)
    assert wire.startswith("LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K")
    assert crypto.public_key_from_wire(wire).public_numbers() == key.public_key().public_numbers()
    assert crypto.same_public_key(wire, key)


def test_unusable_keys_are_refused() -> None:
    """Garbage, a passphrase, a 1024-bit key and an EC key are InvalidKey, with the reason."""
    small = crypto.generate_private_key(1024)
    locked = small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"secret"))
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(InvalidKey, match="not a PEM private key"):
        crypto.private_key_from_pem(b"hello")
    with pytest.raises(InvalidKey, match="passphrase"):
        crypto.private_key_from_pem(locked)
    with pytest.raises(InvalidKey, match="1024 bits"):
        crypto.private_key_from_pem(crypto.private_key_to_pem(small))
    with pytest.raises(InvalidKey, match="not an RSA key"):
        crypto.private_key_from_pem(ec_pem)
    with pytest.raises(InvalidKey, match="base64"):
        crypto.public_key_from_wire("LS0t!")


_WEBCRYPTO = """
async ({pkcs8, spki, envelope, aad, reply}) => {
  const bytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
  const text = new TextEncoder();
  const oaep = {name: "RSA-OAEP", hash: "SHA-256"};
  const [, wrapped, nonce, body] = envelope.split(".");
  const priv = await crypto.subtle.importKey("pkcs8", bytes(pkcs8), oaep, false, ["decrypt"]);
  const raw = await crypto.subtle.decrypt({name: "RSA-OAEP"}, priv, bytes(wrapped));
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
  const plain = await crypto.subtle.decrypt(
    {name: "AES-GCM", iv: bytes(nonce), additionalData: text.encode(aad)}, key, bytes(body));
  const pub = await crypto.subtle.importKey("spki", bytes(spki), oaep, false, ["encrypt"]);
  const fresh = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key2 = await crypto.subtle.importKey("raw", fresh, "AES-GCM", false, ["encrypt"]);
  const sealed = await crypto.subtle.encrypt(
    {name: "AES-GCM", iv, additionalData: text.encode(aad)}, key2, text.encode(reply));
  const wrapped2 = await crypto.subtle.encrypt({name: "RSA-OAEP"}, pub, fresh);
  return {plain: new TextDecoder().decode(plain),
          envelope: ["v6flow-aead-1", b64(wrapped2), b64(iv), b64(sealed)].join(".")};
}
"""


def test_aead_is_webcrypto_friendly(key: crypto.RSAPrivateKey) -> None:
    """Chromium's WebCrypto decrypts an AEAD result and writes one Python decrypts."""
    from playwright.sync_api import sync_playwright

    from tests.ui.browser import launch_browser

    binding = crypto.result_binding(collaboration_id=3, task_id=7, sender=2, recipient=1,
                                    input_nonce="q83vEjRWeJq83vEj")
    envelope = crypto.aead_encrypt(PLAINTEXT, key.public_key(), binding)
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page()
            # WebCrypto needs a secure context: http://localhost is one (served by the route).
            page.route("http://localhost/", lambda route: route.fulfill(
                body="<!doctype html><title>webcrypto</title>", content_type="text/html"))
            page.goto("http://localhost/")
            out = page.evaluate(_WEBCRYPTO, {
                "pkcs8": base64.b64encode(pkcs8).decode(), "aad": binding.aad().decode(),
                "spki": base64.b64encode(spki).decode(), "envelope": envelope,
                "reply": "from the browser ∑"})
        finally:
            browser.close()
    assert out["plain"].encode() == PLAINTEXT
    assert crypto.aead_decrypt(out["envelope"], key, binding).decode() == "from the browser ∑"


# -- v6flow key generate -----------------------------------------------------------------
def test_key_generate_writes_a_v4_key_readable_only_by_its_owner(tmp_path: Path) -> None:
    """`v6flow key generate`: 4096-bit v4 PEM, mode 0600, says where it goes; never the key."""
    import sys

    out = tmp_path / "org.pem"
    done = subprocess.run([sys.executable, "-m", "v6flow.cli.main", "key", "generate",
                           "--out", str(out)], capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert crypto.private_key_from_pem(pem).key_size == 4096
    assert "encryption:" in done.stdout and f"private_key: {out}" in done.stdout
    assert f'setup_encryption("{out}")' in done.stdout
    assert "PRIVATE KEY" not in done.stdout + done.stderr
    again = subprocess.run([sys.executable, "-m", "v6flow.cli.main", "key", "generate",
                            "--out", str(out), "--bits", "2048"], capture_output=True,
                           text=True, check=False, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr
    assert out.read_bytes() == pem
