"""The UI's end-to-end encryption (ui/v6flow_ui/src/crypto.js, wire.js) against v6flow.crypto, in
Chromium: key files, both schemes both ways where the UI uses them, wrong keys, tampering, blobs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.server import ServerProcess
from tests.ui.browser import ui_url
from v6flow import crypto

VALUE = {"mean": 1.5, "names": ["Zoë", "∑ marker"]}
#: The AAD of a result of task 7 at organization 2 for organization 1, bound to input nonce N.
NONCE = base64.b64encode(bytes(range(12))).decode()
RESULT = crypto.result_binding(collaboration_id=3, task_id=7, sender=2, recipient=1,
                               input_nonce=NONCE)
#: What openResult needs to rebuild RESULT's AAD (the run's input carries the nonce).
CONTEXT = {"collaboration": {"id": 3, "encrypted": True}, "task": {"id": 7, "init_org": {"id": 1}},
           "run": {"id": 70, "organization": {"id": 2},
                   "input": f"v6flow-aead-1.AAAA.{NONCE}.{'A' * 24}"}}


@pytest.fixture(scope="module")
def key() -> crypto.RSAPrivateKey:
    """An organization's key (2048 bits keeps the test fast; the code is size-agnostic)."""
    return crypto.generate_private_key(2048)


@pytest.fixture(scope="module")
def other_key() -> crypto.RSAPrivateKey:
    """Another organization's key."""
    return crypto.generate_private_key(2048)


def _pem(key: crypto.RSAPrivateKey) -> str:
    return crypto.private_key_to_pem(key).decode()


@pytest.fixture
def modules(page: Any, server: ServerProcess) -> Any:
    """A page of the UI's origin (a secure context: 127.0.0.1) to import its modules from."""
    page.goto(ui_url(server.url) + "/")
    return page


def run(page: Any, body: str, **args: Any) -> Any:
    """Evaluate ``body`` with ``c`` = crypto.js, ``w`` = wire.js and ``args``."""
    return page.evaluate(
        "async (args) => { const c = await import('/src/crypto.js');"
        " const w = await import('/src/wire.js');"
        " const bytes = (s) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));"
        f" return ({body}); }}", args)


def _open(page: Any, pem: str, text: str, context: dict[str, Any] | None = None) -> Any:
    return run(page, "(async () => { const key = await c.loadPrivateKey(args.pem);"
                     " return w.readResult(args.text, {...args.context, key,"
                     " keyOrganizationId: 1}); })()",
               pem=pem, text=text, context=context or CONTEXT)


def test_v4_key_files_load_with_the_server_s_public_key_text(
        modules: Any, key: crypto.RSAPrivateKey) -> None:
    """PKCS#1 and PKCS#8 files give the API's public_key text and the CLI's fingerprint."""
    # Prepare
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    wire = crypto.public_key_to_wire(key)
    expected = hashlib.sha256(wire.encode()).hexdigest()[:16]
    # Execute
    loaded = [run(modules, "c.loadPrivateKey(args.pem).then((k) => [k.publicWire, k.fingerprint,"
                           " k.bits, c.samePublicKey(args.wire, k)])", pem=pem, wire=wire)
              for pem in (_pem(key), pkcs8)]
    # Assert
    assert loaded == [[wire, expected, 2048, True]] * 2


def _unusable_key_file(content: str, key: crypto.RSAPrivateKey) -> str:
    """A PEM text the UI must refuse, of the kind ``content`` names."""
    pem = serialization.Encoding.PEM
    if content == "encrypted":
        return key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"pw")).decode()
    if content == "public":
        return key.public_key().public_bytes(
            pem, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if content == "ec":
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    if content == "small":
        return _pem(crypto.generate_private_key(1024))
    return "hello"


@pytest.mark.parametrize(("content", "reason"), [
    ("encrypted", "protected by a passphrase"),
    ("public", "holds a public key"),
    ("ec", "not an RSA key"),
    ("small", "1024 bits; at least 2048"),
    ("text", "not a PEM file"),
], ids=["passphrase", "public-key", "ec-key", "small-key", "not-pem"])
def test_unusable_key_files_say_why(modules: Any, key: crypto.RSAPrivateKey, content: str,
                                    reason: str) -> None:
    """A key file the UI cannot use is refused with the reason (never its content)."""
    # Prepare
    pem = _unusable_key_file(content, key)
    # Execute
    error = run(modules, "c.loadPrivateKey(args.pem).then(() => null,"
                         " (e) => [e.kind, e.message])", pem=pem)
    # Assert
    assert error is not None and error[0] == "key"
    assert reason in error[1]
    assert "MII" not in error[1]


def test_aead_results_from_python_open_in_the_browser(modules: Any,
                                                      key: crypto.RSAPrivateKey) -> None:
    """A v6flow-aead-1 result sealed by v6flow.crypto decrypts with the result AAD."""
    # Prepare
    sealed = crypto.aead_encrypt(json.dumps(VALUE).encode(), key.public_key(), RESULT)
    # Execute
    read = _open(modules, _pem(key), sealed)
    # Assert
    assert read == {"ok": True, "value": VALUE, "scheme": "v6flow-aead-1"}


@pytest.mark.parametrize("change", ["flip", "other-task", "other-input", "plain"])
def test_tampered_or_moved_aead_results_are_refused(modules: Any, key: crypto.RSAPrivateKey,
                                                    change: str) -> None:
    """A flipped bit, another task, another input nonce, or plaintext: 'tampered', readable."""
    # Prepare
    sealed = crypto.aead_encrypt(json.dumps(VALUE).encode(), key.public_key(), RESULT)
    context = json.loads(json.dumps(CONTEXT))
    if change == "flip":
        head, body = sealed.rsplit(".", 1)
        raw = bytearray(base64.b64decode(body))
        raw[0] ^= 1
        sealed = f"{head}.{base64.b64encode(bytes(raw)).decode()}"
    elif change == "other-task":
        context["task"]["id"] = 8
    elif change == "other-input":
        context["sentNonce"] = base64.b64encode(os.urandom(12)).decode()
    else:
        sealed = crypto.plain_encrypt(json.dumps(VALUE).encode())
    # Execute
    read = _open(modules, _pem(key), sealed, context)
    # Assert
    assert read["ok"] is False and read["kind"] == "tampered", read
    assert read["error"].startswith("The result of run 70 (organization 2) cannot be read: ")


def test_a_result_for_another_key_says_so(modules: Any, key: crypto.RSAPrivateKey,
                                          other_key: crypto.RSAPrivateKey) -> None:
    """v6flow-aead-1 and v4 results for another organization's key: 'wrong key', with why."""
    # Prepare
    aead = crypto.aead_encrypt(json.dumps(VALUE).encode(), other_key.public_key(), RESULT)
    v4 = crypto.v4_encrypt(json.dumps(VALUE).encode(), other_key.public_key())
    # Execute
    read = [_open(modules, _pem(key), text) for text in (aead, v4)]
    # Assert
    assert [r["kind"] for r in read] == ["wrong-key", "wrong-key"]
    assert "cannot be unwrapped with this private key" in read[0]["error"]
    assert "bad PKCS#1 v1.5 padding" in read[1]["error"]


def test_v4_results_open_with_bigint_rsa(modules: Any, key: crypto.RSAPrivateKey) -> None:
    """v4 results (PKCS#1 v1.5 + AES-CTR), also v4's web UI variant, decrypt in the browser."""
    # Prepare
    plain = json.dumps(VALUE).encode()
    v4 = crypto.v4_encrypt(plain, key.public_key())
    # v4's web UI: the content key wrapped as base64 text, the plaintext base64 once more
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    content, iv = os.urandom(32), os.urandom(16)
    body = Cipher(algorithms.AES(content), modes.CTR(iv)).encryptor().update(
        base64.b64encode(plain))
    wrapped = key.public_key().encrypt(base64.b64encode(content), padding.PKCS1v15())
    ui = "$".join(base64.b64encode(p).decode() for p in (wrapped, iv, body))
    # Execute
    read = [_open(modules, _pem(key), text) for text in (v4, ui)]
    # Assert
    assert read == [{"ok": True, "value": VALUE, "scheme": "v4"}] * 2


def test_random_v4_key_blocks_are_wrong_keys_never_crashes(modules: Any,
                                                            key: crypto.RSAPrivateKey) -> None:
    """Ciphertexts that are not well-padded for this key all end as the one 'wrong key' error."""
    # Prepare
    iv, body = base64.b64encode(os.urandom(16)).decode(), base64.b64encode(b"{}").decode()
    texts = [f"{base64.b64encode(os.urandom(size)).decode()}${iv}${body}"
             for size in (256,) * 30 + (255, 257, 1)]
    # Execute
    kinds = run(modules, "(async () => { const key = await c.loadPrivateKey(args.pem);"
                         " const out = []; for (const t of args.texts) {"
                         " const r = await w.readResult(t, {key});"
                         " out.push(r.ok ? 'ok' : r.kind); } return out; })()",
                pem=_pem(key), texts=texts)
    # Assert
    assert kinds == ["wrong-key"] * len(texts)


def test_inputs_sealed_in_the_browser_open_in_python(modules: Any,
                                                     key: crypto.RSAPrivateKey) -> None:
    """encryptInput seals for the organization's public_key with the input AAD; the nonce it
    answers is the envelope's."""
    # Prepare
    value = {"method": "echo", "args": ["ß€😀"], "kwargs": {}}
    organization = {"id": 2, "name": "b", "public_key": crypto.public_key_to_wire(key)}
    # Execute
    sealed = run(modules, "w.encryptInput(args.value, {collaboration: {id: 3, encrypted: true},"
                          " organization: args.organization, senderId: 1})",
                 value=value, organization=organization)
    # Assert
    binding = crypto.input_binding(collaboration_id=3, sender=1, recipient=2)
    assert json.loads(crypto.aead_decrypt(sealed["text"], key, binding)) == value
    assert sealed["nonce"] == crypto.aead_nonce(sealed["text"])


def test_blobs_decode_whole_and_as_streams(modules: Any, key: crypto.RSAPrivateKey) -> None:
    """A plain blob (base64 text) and a v4 encrypted one (base64 head, raw ciphertext) read
    whole and, a few bytes at a time, as the download stream."""
    # Prepare
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    value = [{"row": i, "text": "x" * (i % 50)} for i in range(400)]
    plain = json.dumps(value).encode()
    content, iv = os.urandom(32), os.urandom(16)
    cipher = Cipher(algorithms.AES(content), modes.CTR(iv)).encryptor().update(plain)
    head = "$".join(base64.b64encode(p).decode() for p in (
        key.public_key().encrypt(content, padding.PKCS1v15()), iv)) + "$"
    blobs = {"plain": base64.b64encode(base64.b64encode(plain)).decode(),
             "v4": base64.b64encode(head.encode() + cipher).decode()}
    # Execute
    out = run(modules, """(async () => {
      const key = await c.loadPrivateKey(args.pem);
      const out = {};
      for (const [name, blob] of Object.entries(args.blobs)) {
        const data = bytes(blob);
        const whole = await w.readBlobResult(data, {key});
        const body = new ReadableStream({ start(controller) {
          for (let i = 0; i < data.length; i += 37) controller.enqueue(data.slice(i, i + 37));
          controller.close(); } });
        const streamed = await new Response(await w.blobPayloadStream(body, {key})).text();
        out[name] = [whole, JSON.parse(streamed)];
      }
      return out;
    })()""", pem=_pem(key), blobs=blobs)
    # Assert
    assert out["plain"] == [{"ok": True, "value": value, "scheme": "plain"}, value]
    assert out["v4"] == [{"ok": True, "value": value, "scheme": "v4"}, value]
