"""The sandbox from Python: started with flags, seeded over the admin API,
refunded through each provider's own HTTP API, broken with injected faults,
and checked through the ledger: exactly one refund per duplicate key after a
retry, for all four providers. Then the read routes, answered from the same
ledger: each provider's read, the read delay, a fault on a read, and Optty's
notifications."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid

import pytest
import requests

from conftest import SEED_FILE
from sandbox_client import PROVIDERS, Admin, AdminError, Ambiguous, Providers, Running, openapp_verify


def fresh_order(admin: Admin, captured: float = 100.00) -> str:
    """Seeds a new PLN order over the admin API; returns its id."""
    order_id = f"PY-{uuid.uuid4().hex[:12]}"
    state = admin.seed(id=order_id, currency="PLN", captured=captured)
    assert state["refunded"] == 0 and state["refunds"] == []
    return order_id


def test_started_with_fixed_ports_and_the_seed_file(sandbox: Running, port_base: int):
    for offset, p in enumerate(PROVIDERS):
        assert sandbox.config[p]["port"] == port_base + offset
        assert sandbox.config[p]["base_url"] == f"http://127.0.0.1:{port_base + offset}"
        admin = sandbox.admin(p)
        assert admin.info()["provider"] == p
        seeded = SEED_FILE[p][0]
        assert sandbox.config[p]["orders"] == [seeded["id"]]
        order = admin.order(seeded["id"])
        assert order["currency"] == seeded["currency"]
        assert order["captured"] == seeded["captured"]
    assert sandbox.admin("moyasar").order("PY-MY-1")["refunded"] == 0.345
    # OpenApp orders are found by their oaOrderId too.
    assert sandbox.admin("openapp").order("PY-OA-1")["id"] == "PY-SHOP-1"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refund_through_the_providers_own_api(sandbox: Running, provider: str):
    admin = sandbox.admin(provider)
    api = Providers(sandbox)
    order = fresh_order(admin)
    key = api.key(provider)
    res = api.refund(provider, order, key, 1250)
    assert res.status_code == 200, res.text
    [entry] = admin.refunds(reference=key)
    assert entry["order_id"] == order and entry["amount"] == 12.5
    assert entry["status"] == ("PENDING" if provider == "openapp" else "SUCCEEDED")
    assert admin.order(order)["refunded"] == 12.5
    [logged] = [r for r in admin.requests() if r["duplicate_key"] == key]
    assert (logged["method"], logged["status"], logged["outcome"]) == ("POST", 200, "answered")


FAULTS = {
    # Before the work: nothing recorded, the retry refunds.
    "status": {"kind": "status", "status": 503},
    "non_json_502": {"kind": "non_json_502"},
    # After the work: recorded, the answer lost or unreadable; the retry
    # must not refund again.
    "drop_after_commit": {"kind": "drop_after_commit"},
    "status_after_commit": {"kind": "status_after_commit", "status": 504},
    "malformed_body": {"kind": "malformed_body"},
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_retry_with_the_same_key_leaves_exactly_one_refund(sandbox: Running, provider: str, fault: str):
    admin = sandbox.admin(provider)
    api = Providers(sandbox)
    order = fresh_order(admin)
    rule = admin.add_fault(FAULTS[fault], match={"kind": "order", "order": order}, times=1)
    key = api.key(provider)

    with pytest.raises(Ambiguous):
        api.refund(provider, order, key, 1000)
    res, attempts = api.refund_with_retries(provider, order, key, 1000)
    assert attempts == 1
    if provider == "openapp" and fault not in ("status", "non_json_502"):
        # OpenApp's duplicate rule: the caseId exists already.
        assert res.status_code == 409, res.text
        assert res.json()["exception"] == "RefundExistsException"
    else:
        assert res.status_code == 200, res.text

    assert [r["id"] for r in admin.faults()] == [rule["id"]]
    assert admin.faults()[0]["fired"] == 1 and admin.faults()[0]["times_left"] == 0
    ledger = admin.refunds(reference=key)
    assert len(ledger) == 1, ledger
    assert admin.order(order)["refunded"] == 10.0
    attempts_logged = [r for r in admin.requests() if r["duplicate_key"] == key]
    assert len(attempts_logged) == 2
    assert attempts_logged[0]["fault"] == fault
    if fault == "drop_after_commit":
        assert (attempts_logged[0]["status"], attempts_logged[0]["outcome"]) == (None, "dropped")


def test_openapp_signature_faults_are_caught_by_a_python_verifier(sandbox: Running):
    admin = sandbox.admin("openapp")
    api = Providers(sandbox)
    for fault in ({"kind": "wrong_signature"}, {"kind": "unsigned_answer"}):
        order = fresh_order(admin)
        admin.add_fault(fault, match={"kind": "nth", "n": 1}, times=1)
        key = api.key("openapp")
        with pytest.raises(Ambiguous, match="signature"):
            api.refund("openapp", order, key, 500)
        res = api.refund("openapp", order, key, 500)
        assert res.status_code == 409 and res.json()["exception"] == "RefundExistsException"
        assert len(admin.refunds(reference=key)) == 1


def test_latency_then_a_timed_out_client_retries_after_the_work_is_done(sandbox: Running):
    """The client gives up, the sandbox finishes the work anyway; waiting for
    it (in_flight back to 0, the ledger shows the refund) and retrying with the
    same key leaves one refund. Moyasar, whose in-flight duplicate rule makes
    this interesting."""
    admin = sandbox.admin("moyasar")
    api = Providers(sandbox, timeout=0.2)
    order = fresh_order(admin)
    admin.add_fault({"kind": "latency", "ms": 600}, times=1)
    key = api.key("moyasar")
    with pytest.raises(Ambiguous):
        api.refund("moyasar", order, key, 700)
    # Still running: a duplicate now answers "Initial request is still processing."
    busy = Providers(sandbox).refund("moyasar", order, key, 700)
    assert (busy.status_code, busy.json()["message"]) == (400, "Initial request is still processing.")
    deadline = 50
    while admin.info()["in_flight"] and deadline:
        deadline -= 1
        time.sleep(0.05)
    res = Providers(sandbox).refund("moyasar", order, key, 700)
    assert res.status_code == 200
    assert len(admin.refunds(reference=key)) == 1
    assert admin.order(order)["refunded"] == 7.0


def test_a_pending_refund_is_settled_over_the_admin_api(sandbox: Running):
    admin = sandbox.admin("openapp")
    api = Providers(sandbox)
    order = fresh_order(admin)
    ok, failed = api.key("openapp"), api.key("openapp")
    for key in (ok, failed):
        assert api.refund("openapp", order, key, 2000).status_code == 200
    assert [r["status"] for r in admin.refunds(order=order)] == ["PENDING", "PENDING"]
    assert admin.settle(order, ok, "SUCCEEDED")["status"] == "SUCCEEDED"
    assert admin.settle(order, failed, "FAILED")["status"] == "FAILED"
    # The failed refund's money is refundable again; outcomes are final.
    assert admin.order(order)["refunded"] == 20.0
    with pytest.raises(AdminError) as e:
        admin.settle(order, failed, "SUCCEEDED")
    assert (e.value.status, e.value.body["field"]) == (409, "status")
    assert [r["id"] for r in admin.refunds(order=order, status="FAILED")] == [failed]


def test_admin_errors_are_json_naming_the_field(sandbox: Running):
    admin = sandbox.admin("afterpay")
    cases = [
        (lambda: admin.seed(id="X", currency="EUR", captured=1, refunded=2), 400, "refunded"),
        (lambda: admin.seed(id="X", currency="EURO", captured=1), 400, "currency"),
        (lambda: admin.add_fault({"kind": "status", "status": 42}), 400, "fault.status"),
        (lambda: admin.add_fault({"kind": "explode"}), 400, "fault.kind"),
        (lambda: admin.add_fault({"kind": "malformed_body"}, match={"kind": "nth", "n": 0}), 400, "match.n"),
        (lambda: admin.order("NOPE"), 404, "id"),
        (lambda: admin.settle("PY-AP-1", "nope", "FAILED"), 404, "refund_id"),
        (lambda: admin.refunds(colour="red"), 400, "colour"),
    ]
    for call, status, field in cases:
        with pytest.raises(AdminError) as e:
            call()
        assert (e.value.status, e.value.body.get("field")) == (status, field), e.value.body
        assert isinstance(e.value.body["error"], str)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_router_level_errors_come_in_the_providers_shape(sandbox: Running, provider: str):
    url = sandbox.url(provider)
    res = requests.get(url + sandbox.config[provider]["refund_path"].replace("{orderReference}", "X")
                       .replace("{orderNumber}", "X").replace("{id}", "X"), timeout=5)
    assert res.status_code == 405 and res.headers["allow"] == "POST"
    body = res.json()
    shape = {
        "optty": lambda b: b["statusCode"] == 405,
        "afterpay": lambda b: b[0]["code"] == "MethodNotAllowed",
        "moyasar": lambda b: set(b) == {"message"},
        "openapp": lambda b: b["exception"] == "MethodNotAllowedException",
    }[provider]
    assert shape(body), body
    if provider == "openapp":
        secret = sandbox.config["openapp"]["credentials"]["api_secret"]
        assert openapp_verify(secret, res.headers.get("authorization"), res.headers.get("x-app-signature"), res.content)
    res = requests.post(url + "/nowhere", data=json.dumps({}), headers={"content-type": "text/plain"}, timeout=5)
    assert res.status_code == 404 and res.headers["content-type"].startswith("application/json")


# --- Reads ------------------------------------------------------------------------

READERS = ("optty", "afterpay", "moyasar")


def listed_refunds(provider: str, body: dict) -> list[dict]:
    """The refunds a read lists (Moyasar: its refund transactions)."""
    if provider == "moyasar":
        return [t for t in body["transactions"] if t["type"] == "refund"]
    return body.get("refunds", [])


def test_optty_transaction_details_list_refunds_by_refund_reference(sandbox: Running):
    admin = sandbox.admin("optty")
    api = Providers(sandbox)
    order = fresh_order(admin)
    key = api.key("optty")
    assert api.refund("optty", order, key, 1250).status_code == 200
    res = api.read("optty", order)
    assert res.status_code == 200, res.text
    details = res.json()
    assert (details["merchantReference"], details["amount"], details["currency"]) == (order, "100.00", "PLN")
    [refund] = details["refunds"]
    assert refund["refundId"] == key, "the refundReference, the sandbox's documented choice"
    assert (refund["amount"], refund["status"], refund["refundFailureReason"]) == ("12.50", "SUCCESSFUL", "")
    assert refund["refundReason"] == "refund from Python"
    # Unknown order: the refund route's 404; no token: the page's 401.
    assert api.read("optty", "PY-NOPE").json() == {"statusCode": 404, "message": "Not Found"}
    res = requests.post(f"{sandbox.url('optty')}/orders/{order}/details", timeout=5)
    assert res.status_code == 401 and res.json()["error"] == "Unauthorized"


def test_optty_details_follow_a_settlement(sandbox: Running):
    admin = sandbox.admin("optty")
    api = Providers(sandbox)
    order = f"PY-{uuid.uuid4().hex[:12]}"
    admin.seed(id=order, currency="PLN", captured=100.00, refund_status="PENDING")
    ok, failed = api.key("optty"), api.key("optty")
    for key in (ok, failed):
        assert api.refund("optty", order, key, 1000).status_code == 200
    assert [r["status"] for r in api.read("optty", order).json()["refunds"]] == ["PENDING", "PENDING"]
    ids = {r["reference"]: r["id"] for r in admin.refunds(order=order)}
    admin.settle(order, ids[ok], "SUCCEEDED")
    admin.settle(order, ids[failed], "FAILED")
    refunds = api.read("optty", order).json()["refunds"]
    assert [(r["refundId"], r["status"]) for r in refunds] == [(ok, "SUCCESSFUL"), (failed, "FAILED")]
    assert refunds[1]["refundFailureReason"] != ""


def test_afterpay_get_order_and_get_refunds(sandbox: Running):
    admin = sandbox.admin("afterpay")
    api = Providers(sandbox)
    order = fresh_order(admin)
    assert api.read("afterpay", order).json()["refunds"] == []
    res = api.refund("afterpay", order, api.key("afterpay"), 2500)
    number = res.json()["refundNumbers"][0]
    got = api.read("afterpay", order).json()
    assert got["orderDetails"]["orderNumber"] == order
    [refund] = got["refunds"]
    assert (refund["refundNumber"], refund["amount"], refund["balance"]) == (number, -25.0, -25.0)
    assert refund["refundItems"][0]["grossUnitPrice"] == -25.0
    assert "transactionReference" not in refund, "Riverty echoes none of our references"
    one = api.read("afterpay", order, refund_number=number)
    assert one.status_code == 200 and one.json() == {"refunds": [refund]}
    missing = api.read("afterpay", order, refund_number="999999999")
    assert missing.status_code == 404 and missing.json()[0]["fieldReference"] == "refundNumber"


def test_moyasar_retrieve_order_is_the_refunds_order(sandbox: Running):
    admin = sandbox.admin("moyasar")
    api = Providers(sandbox)
    order = fresh_order(admin)
    key = api.key("moyasar")
    answer = api.refund("moyasar", order, key, 700).json()
    res = api.read("moyasar", order)
    assert res.status_code == 200
    assert res.json() == answer
    [refund] = listed_refunds("moyasar", res.json())
    assert (refund["id"], refund["status"], refund["amount"]) == (key, "approved", 700)
    assert api.read("moyasar", "PY-NOPE").status_code == 404


def test_openapp_has_no_read(sandbox: Running):
    assert sandbox.config["openapp"]["read_routes"] == []
    assert sandbox.config["optty"]["read_routes"] == ["POST /orders/{merchantReference}/details"]
    with pytest.raises(ValueError):
        Providers(sandbox).read("openapp", "PY-OA-1")


@pytest.mark.parametrize("provider", READERS)
def test_a_refund_shows_in_reads_only_after_the_read_delay(sandbox: Running, provider: str):
    admin = sandbox.admin(provider)
    api = Providers(sandbox)
    order = fresh_order(admin)
    assert admin.settings() == {"read_delay_ms": 0}
    admin.change_settings(read_delay_ms=500)
    try:
        answered_at = None
        started = time.monotonic()
        assert api.refund(provider, order, api.key(provider), 300).status_code == 200
        answered_at = time.monotonic()
        early = listed_refunds(provider, api.read(provider, order).json())
        if time.monotonic() - started < 0.5:
            assert early == [], "not yet"
        assert len(admin.refunds(order=order)) == 1, "the ledger has it at once"
        time.sleep(max(0.0, 0.55 - (time.monotonic() - answered_at)))
        assert len(listed_refunds(provider, api.read(provider, order).json())) == 1
    finally:
        admin.change_settings(read_delay_ms=0)


@pytest.mark.parametrize("provider", READERS)
def test_a_fault_on_a_read_leaves_refunds_alone(sandbox: Running, provider: str):
    admin = sandbox.admin(provider)
    api = Providers(sandbox)
    order = fresh_order(admin)
    rule = admin.add_fault({"kind": "status", "status": 503}, match={"kind": "order", "order": order},
                           times=1, operation="read")
    assert rule["operation"] == "read"
    assert api.refund(provider, order, api.key(provider), 100).status_code == 200
    assert admin.faults()[0]["fired"] == 0, "a refund is no read"
    assert api.read(provider, order).status_code == 503
    assert admin.faults()[0]["fired"] == 1
    res = api.read(provider, order)
    assert res.status_code == 200 and len(listed_refunds(provider, res.json())) == 1
    [logged] = [r for r in admin.requests() if r["fault"] == "status" and r["status"] == 503][-1:]
    assert order in logged["path"]


class _Hook(http.server.BaseHTTPRequestHandler):
    """Records every notification; answers the first `fail_first` 500."""

    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append(json.loads(body))
        status = 500 if type(self).fail_first > 0 else 200
        type(self).fail_first = max(0, type(self).fail_first - 1)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_optty_notifies_each_status_change_and_retries(sandbox: Running):
    _Hook.received, _Hook.fail_first = [], 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    admin = sandbox.admin("optty")
    api = Providers(sandbox)
    try:
        admin.clear_notifications()
        view = admin.change_notifications(url=f"http://127.0.0.1:{server.server_port}/hook", backoff_ms=10)
        assert view["event"] == "ORDER_STATUS_UPDATE"
        order = f"PY-{uuid.uuid4().hex[:12]}"
        admin.seed(id=order, currency="PLN", captured=100.00, refund_status="PENDING")
        key = api.key("optty")
        assert api.refund("optty", order, key, 500).status_code == 200
        [entry] = admin.refunds(order=order)
        admin.settle(order, entry["id"], "SUCCEEDED")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            notes = admin.notifications()["notifications"]
            if len(notes) == 2 and all(n["delivery"] == "delivered" for n in notes):
                break
            time.sleep(0.02)
        assert [n["attempts"] for n in notes] == [[500, 200], [200]]
        delivered = _Hook.received[1:]
        assert [(b["event"], b["data"]["refundId"], b["data"]["status"]) for b in delivered] == [
            ("ORDER_STATUS_UPDATE", key, "PENDING"),
            ("ORDER_STATUS_UPDATE", key, "SUCCESSFUL"),
        ]
        assert delivered[0]["data"]["merchantReference"] == order
    finally:
        admin.change_notifications(url=None)
        admin.clear_notifications()
        server.shutdown()
