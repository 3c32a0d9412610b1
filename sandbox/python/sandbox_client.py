"""A small client of the sandbox, as a team in another language would write it.

Starting the binary, the admin API, and each provider's own refund API with its
own auth: Optty's client-credentials token, AfterPay's X-Auth-Key, Moyasar's
bearer key and OpenApp's HMAC signature (computed here, in Python, from the
scheme in shared/provider-docs/README.md "OpenApp HMAC"); and the providers'
read routes (Optty's Transaction Details, AfterPay's Get Order and Get Refunds,
Moyasar's Retrieve Order; OpenApp publishes none).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
PROVIDERS = ("optty", "afterpay", "moyasar", "openapp")


def sandbox_binary() -> Path:
    """SANDBOX_BIN if set, else the binary `cargo build -p sandbox` makes."""
    explicit = os.environ.get("SANDBOX_BIN")
    if explicit:
        return Path(explicit)
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "sandbox"], cwd=REPO, check=True
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "sandbox"


def free_port_base() -> int:
    """A port with it and the next three free right now."""
    start = 30000 + os.getpid() % 20000
    for base in range(start, start + 2000, 7):
        sockets = []
        try:
            for i in range(4):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no four free consecutive ports")


@dataclass
class Running:
    """A started sandbox: the process and its `--print-config json` line."""

    process: subprocess.Popen
    config: dict[str, Any]

    def url(self, provider: str) -> str:
        return self.config[provider]["base_url"]

    def admin(self, provider: str) -> "Admin":
        return Admin(self.config[provider]["admin_url"])

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code (the sandbox stops cleanly: 0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start(binary: Path, *flags: str) -> Running:
    """Starts the sandbox with `flags` and `--print-config json`; returns once
    every server listens (the line is printed only then)."""
    process = subprocess.Popen(
        [str(binary), *flags, "--print-config", "json"],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"the sandbox exited with {process.returncode} before printing its config")
    return Running(process, json.loads(line))


class AdminError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Admin:
    """The admin API of one provider's server (sandbox/admin.openapi.json)."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def _call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        res = self.http.request(
            method, self.url + path, json=body, params=params, timeout=10
        )
        payload = res.json()
        if res.status_code >= 400:
            raise AdminError(res.status_code, payload)
        return payload

    def info(self) -> dict:
        return self._call("GET", "")

    def seed(self, **order: Any) -> dict:
        return self._call("POST", "/orders", order)

    def order(self, order_id: str) -> dict:
        return self._call("GET", f"/orders/{order_id}")

    def refunds(self, **filters: str) -> list[dict]:
        return self._call("GET", "/refunds", params=filters)

    def settle(self, order_id: str, refund_id: str, status: str) -> dict:
        return self._call(
            "POST", f"/orders/{order_id}/refunds/{refund_id}/settle", {"status": status}
        )

    def add_fault(
        self, fault: dict, match: dict | None = None, times: int | None = None, operation: str | None = None
    ) -> dict:
        """A fault on the refund route, or on the read routes with operation="read"."""
        body: dict[str, Any] = {"fault": fault}
        if match is not None:
            body["match"] = match
        if times is not None:
            body["times"] = times
        if operation is not None:
            body["operation"] = operation
        return self._call("POST", "/faults", body)

    def faults(self) -> list[dict]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> dict:
        return self._call("DELETE", "/faults")

    def requests(self, since: int | None = None) -> list[dict]:
        return self._call("GET", "/requests", params={"since": since} if since is not None else None)

    def reset(self) -> dict:
        return self._call("POST", "/reset")

    def settings(self) -> dict:
        return self._call("GET", "/settings")

    def change_settings(self, **settings: Any) -> dict:
        """E.g. change_settings(read_delay_ms=500)."""
        return self._call("PATCH", "/settings", settings)

    # Optty's server only.
    def notifications(self) -> dict:
        return self._call("GET", "/notifications")

    def change_notifications(self, **settings: Any) -> dict:
        """E.g. change_notifications(url="http://127.0.0.1:9000/hook", retries=2)."""
        return self._call("PATCH", "/notifications", settings)

    def clear_notifications(self) -> dict:
        return self._call("DELETE", "/notifications")


# --- OpenApp HMAC, in Python -------------------------------------------------


def openapp_sign(api_key: str, secret: str, method: str, path: str, epoch_ms: int, nonce: str, body: bytes) -> dict[str, str]:
    """The two headers that sign a request (or response) body."""
    elements = f"{api_key}${method.upper()}${path.upper()}${epoch_ms}${nonce}"
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode() if body else ""
    mac = hmac.new(secret.encode(), f"{elements}${digest}".encode(), hashlib.sha256).digest()
    return {
        "authorization": f"hmac v1${elements}",
        "x-app-signature": base64.b64encode(mac).decode(),
    }


def openapp_verify(secret: str, authorization: str | None, signature: str | None, body: bytes) -> bool:
    """Whether a response's signature headers match its exact body."""
    if not authorization or not signature or not authorization.startswith("hmac v1$"):
        return False
    elements = authorization[len("hmac v1$"):]
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode() if body else ""
    expected = hmac.new(secret.encode(), f"{elements}${digest}".encode(), hashlib.sha256).digest()
    try:
        return hmac.compare_digest(expected, base64.b64decode(signature))
    except ValueError:
        return False


# --- Each provider's refund API ------------------------------------------------


class Ambiguous(Exception):
    """The refund may or may not have happened: retry with the same key."""


class Providers:
    """Refunds of `minor` hundredths through each provider's own HTTP API."""

    def __init__(self, running: Running, timeout: float = 5.0):
        self.sb = running
        self.timeout = timeout
        self.http = requests.Session()
        self._optty_token: str | None = None

    def optty_token(self) -> str:
        if self._optty_token is None:
            c = self.sb.config["optty"]["credentials"]
            res = self.http.post(
                c["token_url"],
                data={
                    "client_id": c["client_id"],
                    "client_secret": c["client_secret"],
                    "grant_type": "client_credentials",
                    "scope": c["scope"],
                },
                timeout=self.timeout,
            )
            res.raise_for_status()
            self._optty_token = res.json()["access_token"]
        return self._optty_token

    def key(self, provider: str) -> str:
        """A fresh duplicate key in the form the provider takes."""
        return str(uuid.uuid4()) if provider == "moyasar" else f"py-{uuid.uuid4().hex[:20]}"

    def refund(self, provider: str, order: str, key: str, minor: int, currency: str = "PLN") -> requests.Response:
        """One attempt. Raises Ambiguous when the answer does not tell whether
        the refund happened (no answer, a gateway page, a body that is not the
        provider's JSON, an OpenApp answer whose signature does not verify)."""
        url = self.sb.url(provider)
        major = minor / 100
        try:
            if provider == "optty":
                res = self.http.post(
                    f"{url}/orders/{order}/refund",
                    headers={"Authorization": f"Bearer {self.optty_token()}"},
                    json={
                        "refundReference": key,
                        "refundAmount": {"amount": major, "currency": currency},
                        "refundDescription": "refund from Python",
                    },
                    timeout=self.timeout,
                )
            elif provider == "afterpay":
                res = self.http.post(
                    f"{url}/api/v3/orders/{order}/refunds",
                    headers={"X-Auth-Key": self.sb.config["afterpay"]["credentials"]["x_auth_key"]},
                    json={
                        "captureNumber": "000000001",
                        "transactionReference": key,
                        "items": [{
                            "productId": "sku-1", "description": "Item", "netUnitPrice": major,
                            "grossUnitPrice": major, "quantity": 1, "vatPercent": 0, "vatAmount": 0,
                        }],
                    },
                    timeout=self.timeout,
                )
            elif provider == "moyasar":
                res = self.http.post(
                    f"{url}/v1/orders/{order}/refund",
                    headers={"Authorization": f"Bearer {self.sb.config['moyasar']['credentials']['secret_key']}"},
                    json={"amount": minor, "transaction_id": key},
                    timeout=self.timeout,
                )
            else:
                res = self.openapp(order, key, minor, currency)
        except requests.RequestException as e:
            raise Ambiguous(f"no answer: {e}") from e
        if res.status_code >= 500:
            raise Ambiguous(f"{res.status_code}: {res.text[:80]}")
        if not res.headers.get("content-type", "").startswith("application/json"):
            raise Ambiguous(f"not JSON: {res.headers.get('content-type')}")
        try:
            json.loads(res.content)
        except ValueError as e:
            raise Ambiguous(f"malformed JSON: {e}") from e
        return res

    def openapp(self, order: str, key: str, minor: int, currency: str) -> requests.Response:
        c = self.sb.config["openapp"]["credentials"]
        path = self.sb.config["openapp"]["refund_path"]
        body = json.dumps({
            "oaOrderId": order, "shopOrderId": order, "currency": currency,
            "amount": minor, "reason": "RETURNED", "caseId": key,
        }).encode()
        headers = openapp_sign(
            c["api_key"], c["api_secret"], "POST", path,
            time.time_ns() // 1_000_000, uuid.uuid4().hex, body,
        )
        headers["content-type"] = "application/json"
        res = self.http.post(self.sb.url("openapp") + path, data=body, headers=headers, timeout=self.timeout)
        if res.status_code < 500 and not openapp_verify(
            c["api_secret"], res.headers.get("authorization"), res.headers.get("x-app-signature"), res.content
        ):
            raise Ambiguous("the answer's signature does not verify")
        return res

    def read(self, provider: str, order: str, refund_number: str | None = None) -> requests.Response:
        """The provider's read of `order`: Optty's Transaction Details, AfterPay's Get Order
        (Get Refunds with `refund_number`), Moyasar's Retrieve Order."""
        url = self.sb.url(provider)
        creds = self.sb.config[provider]["credentials"]
        if provider == "optty":
            return self.http.post(
                f"{url}/orders/{order}/details",
                headers={"Authorization": f"Bearer {self.optty_token()}"},
                timeout=self.timeout,
            )
        if provider == "afterpay":
            path = f"/api/v3/orders/{order}" + (f"/refunds/{refund_number}" if refund_number else "")
            return self.http.get(url + path, headers={"X-Auth-Key": creds["x_auth_key"]}, timeout=self.timeout)
        if provider == "moyasar":
            return self.http.get(
                f"{url}/v1/orders/{order}",
                headers={"Authorization": f"Bearer {creds['secret_key']}"},
                timeout=self.timeout,
            )
        raise ValueError(f"{provider} publishes no read")

    def refund_with_retries(self, provider: str, order: str, key: str, minor: int, attempts: int = 3) -> tuple[requests.Response, int]:
        """Retries an ambiguous refund with the same duplicate key; returns the
        final answer and how many attempts it took."""
        for attempt in range(1, attempts + 1):
            try:
                return self.refund(provider, order, key, minor), attempt
            except Ambiguous:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")
