"""What the server checks of encrypted collaborations without keys (CONTRACT §5)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.server.conftest import World, unique
from v6flow import crypto

PAYLOAD = json.dumps({"method": "partial", "kwargs": {"x": 1}}).encode()


@pytest.fixture(scope="module")
def public_key() -> crypto.RSAPublicKey:
    """A recipient's key (the server never sees a private one)."""
    return crypto.generate_private_key(2048).public_key()


def _encrypted_collaboration(world: World) -> int:
    """A new encrypted collaboration of the world's organizations, each with a node."""
    collab = int(world.ok("POST", "/collaboration", json={
        "name": unique("enc"), "organization_ids": world.org_ids, "encrypted": True})["id"])
    for org in world.org_ids:
        world.ok("POST", "/node", json={"collaboration_id": collab, "organization_id": org})
    return collab


def _post(world: World, collaboration_id: int, inputs: list[str]) -> tuple[int, dict[str, str]]:
    body = world.task_body(world.org_ids[:len(inputs)], collaboration_id=collaboration_id)
    body["organizations"] = [{"id": org, "input": text}
                             for org, text in zip(world.org_ids, inputs, strict=False)]
    response = world.call("POST", "/task", world.researcher_token, json=body)
    return response.status_code, response.json()


def test_encrypted_collaboration_stores_both_schemes_unchanged(
        world: World, public_key: crypto.RSAPublicKey) -> None:
    """A v4 and a v6flow-aead-1 input are accepted and stored exactly as sent."""
    collab = _encrypted_collaboration(world)
    inputs = [crypto.v4_encrypt(PAYLOAD, public_key),
              crypto.aead_encrypt(PAYLOAD, public_key, crypto.input_binding(
                  collaboration_id=collab, sender=world.org_ids[0], recipient=world.org_ids[1]))]
    status, task = _post(world, collab, inputs)
    assert status == 201, task
    runs = world.ok("GET", "/run", params={"task_id": task["id"], "include": "input"})["data"]
    assert {r["organization"]["id"]: r["input"] for r in runs} == dict(
        zip(world.org_ids, inputs, strict=False))


@pytest.mark.parametrize("text", [
    base64.b64encode(PAYLOAD).decode(), "not encrypted at all", "a$b$c",
    "v6flow-aead-1.AAAA.AAAA.AAAA"], ids=["base64-json", "text", "v4-not-base64", "aead-short"])
def test_encrypted_collaboration_refuses_what_is_not_an_envelope(world: World,
                                                                 text: str) -> None:
    """Readable or malformed input in an encrypted collaboration: 400 naming the organization."""
    collab = _encrypted_collaboration(world)
    status, body = _post(world, collab, [text])
    assert status == 400
    assert f"organization id={world.org_ids[0]}" in body["msg"]


@pytest.mark.parametrize("scheme", [crypto.Scheme.V4, crypto.Scheme.AEAD])
def test_unencrypted_collaboration_refuses_encrypted_input(
        world: World, public_key: crypto.RSAPublicKey, scheme: crypto.Scheme) -> None:
    """Encrypted input where nobody will decrypt it: 400 saying the collaboration is not."""
    text = crypto.encrypt(PAYLOAD, scheme, public_key, crypto.input_binding(
        collaboration_id=world.collaboration_id, sender=world.org_ids[0],
        recipient=world.org_ids[0]))
    status, body = _post(world, world.collaboration_id, [text])
    assert status == 400
    assert "is not encrypted" in body["msg"]


def test_public_key_must_be_an_rsa_pem(world: World) -> None:
    """An organization's public_key is checked: base64 of an RSA PEM of >= 2048 bits."""
    org = world.org_ids[1]
    node = world.node_token(org)
    fake = base64.b64encode(b"-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    small = crypto.public_key_to_wire(crypto.generate_private_key(1024))
    for bad in (fake.decode(), small, "%%%"):
        response = world.call("PATCH", f"/organization/{org}", node, json={"public_key": bad})
        assert response.status_code == 400, response.text
        assert response.json()["msg"].startswith("public_key must be")
    good = crypto.public_key_to_wire(crypto.generate_private_key(2048))
    assert world.ok("PATCH", f"/organization/{org}", node,
                    json={"public_key": good})["public_key"] == good
