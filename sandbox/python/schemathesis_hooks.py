"""Schemathesis hooks for the sandbox run (SCHEMATHESIS_HOOKS=schemathesis_hooks).

After every successful refund the order is seeded afresh and primed with one
refund again (after_call), so refunds meet a full refundable amount and reads
always list a refund.

OpenApp's HMAC cannot be expressed in OpenAPI, so every OpenApp request is
signed here, over the exact bytes requests is about to send, with the
sandbox's demo credentials (OPENAPP_API_KEY / OPENAPP_API_SECRET from the
environment). A case that leaves out one of the two signature headers on
purpose (schemathesis' missing-header probes) is sent unsigned, so the
sandbox's 401 for it is what is checked.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import urlsplit

import requests
import schemathesis

from sandbox_client import openapp_sign

OPENAPP_PATH = "/merchant/v1/orders/refund"
SIGNATURE_HEADERS = ("authorization", "x-app-signature")


class OpenAppSigner(requests.auth.AuthBase):
    """Signs a prepared request: `authorization` and `x-app-signature`."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = openapp_sign(
            os.environ["OPENAPP_API_KEY"],
            os.environ["OPENAPP_API_SECRET"],
            r.method or "POST",
            urlsplit(r.url or "").path,
            time.time_ns() // 1_000_000,
            uuid.uuid4().hex,
            body,
        )
        r.headers.update(headers)
        return r


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != OPENAPP_PATH:
        return
    present = {name.lower() for name in (case.headers or {})}
    if all(h in present for h in SIGNATURE_HEADERS):
        kwargs["auth"] = OpenAppSigner()


# The operations whose success changes nothing: a read is followed by no reseed.
READS = {
    ("POST", "/orders/{merchantReference}/details"),
    ("GET", "/api/v3/orders/{orderNumber}"),
    ("GET", "/api/v3/orders/{orderNumber}/refunds/{refundNumber}"),
    ("GET", "/v1/orders/{id}"),
}


@schemathesis.hook
def after_call(context, case, response):
    """After a refund went through, the order is seeded afresh (its refunds and
    duplicate keys forgotten), so the next schema-valid request meets a full
    refundable amount again instead of the business-rule 400 of a drained
    order, and more success answers get their schema checked. Then the prime
    refund (SANDBOX_PRIME_REFUND, from run_schemathesis.py) is made again, so the
    reads keep listing one refund."""
    url, order = os.environ.get("SANDBOX_RESEED_URL"), os.environ.get("SANDBOX_RESEED_ORDER")
    operation = (case.operation.method.upper(), case.operation.path)
    if not (url and order and response.status_code == 200):
        return
    if case.operation.path == "/token" or operation in READS:
        return
    requests.post(url, data=order, headers={"content-type": "application/json"}, timeout=5).raise_for_status()
    prime = os.environ.get("SANDBOX_PRIME_REFUND")
    if prime:
        prime = json.loads(prime)
        requests.post(prime["url"], json=prime["body"], headers=prime["headers"], timeout=5).raise_for_status()
