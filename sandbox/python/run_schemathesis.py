"""Schemathesis against the running sandbox, one provider at a time, with each
provider's normalized OpenAPI spec (generated/<provider>/openapi.normalized.json),
every check, a bounded number of examples per operation and a fixed seed.

    python sandbox/python/run_schemathesis.py [--max-examples N] [--seed S]

Starts the sandbox binary itself (SANDBOX_BIN, else `cargo build -p sandbox`)
on fixed ports with one seeded order per provider, whose id every generated
path parameter takes (an unknown order is the one answer the specs leave
undeclared for AfterPay's refund and Optty's Transaction Details; see the
report). Optty's bearer token is fetched first; AfterPay and Moyasar get their
keys as headers; OpenApp's requests are signed by schemathesis_hooks.py, which
also seeds the order afresh after every successful refund so schema-valid
requests keep meeting a full refundable amount, and then makes one refund of
1.00 on it (PRIME_REFUNDS) so the read operations (Optty's Transaction Details,
AfterPay's Get Order and Get Refunds, Moyasar's Retrieve Order) always have a
refund to list: Get Refunds' refundNumber is that refund's. Fails (exit 1) on
any server error or non-conforming answer. Prints, per operation, the requests
the sandbox's request log counted, and schemathesis' own totals.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sandbox_client import PROVIDERS, REPO, free_port_base, sandbox_binary, start  # noqa: E402

# One order per provider; every generated request targets it.
ORDERS = {
    "optty": {"id": "ST-OPTTY-1", "currency": "AUD", "captured": 1000000.00},
    "afterpay": {"id": "ST-AP-1", "currency": "EUR", "captured": 1000000.00},
    "moyasar": {"id": "ST-MY-1", "currency": "SAR", "captured": 1000000.00},
    "openapp": {"id": "ST-SHOP-1", "oa_order_id": "ST-OA-1", "currency": "PLN", "captured": 1000000.00},
}
# Every path parameter of each provider's operations takes the seeded order's id, but
# AfterPay's refundNumber, which takes the number of the refund primed on it (the order's
# first refund after its capture 000000001: 000000002).
PATH_PARAMETERS = {
    "optty": {"orderReference": ORDERS["optty"]["id"], "merchantReference": ORDERS["optty"]["id"]},
    "afterpay": {"orderNumber": ORDERS["afterpay"]["id"], "refundNumber": "000000002"},
    "moyasar": {"id": ORDERS["moyasar"]["id"]},
    "openapp": {},
}

# Body fields that mostly (not always) take the seeded order's values and the
# demo credentials, so most generated requests get past the business rules
# and the token endpoint issues tokens; the rest stay fuzzed.
BODY_VALUES = {
    "optty": {
        "body.client_id": "sandbox-optty-client",
        "body.client_secret": "sandbox-optty-secret",
        "body.refundAmount.currency": "AUD",
    },
    "afterpay": {"body.captureNumber": "000000001"},
    "moyasar": {},
    "openapp": {"body.oaOrderId": "ST-OA-1", "body.shopOrderId": "ST-SHOP-1", "body.currency": "PLN"},
}
BODY_PROBABILITY = 0.8

# Statuses a schema-valid request may get besides schemathesis' defaults: the
# business-rule 400 every spec declares (amount beyond the refundable one, a
# currency or capture number that is not the order's), which no schema can
# rule out.
POSITIVE_EXPECTED = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]


def config_toml(provider: str, strict_positive: bool) -> str:
    positive = [s for s in POSITIVE_EXPECTED if not (strict_positive and s == "400")]
    lines = [
        "[checks.positive_data_acceptance]",
        "expected-statuses = [" + ", ".join(f'"{s}"' for s in positive) + "]",
        "",
        "[parameters]",
    ]
    for name, value in PATH_PARAMETERS[provider].items():
        lines.append(f'"path.{name}" = "{value}"')
    for i, key in enumerate(BODY_VALUES[provider]):
        lines.append(f'"{key}" = {{ dictionary = "v{i}", probability = {BODY_PROBABILITY} }}')
    for i, value in enumerate(BODY_VALUES[provider].values()):
        lines += ["", f"[dictionaries.v{i}]", f'values = ["{value}"]']
    return "\n".join(lines) + "\n"


def auth_headers(provider: str, config: dict) -> list[str]:
    creds = config[provider]["credentials"]
    if provider == "optty":
        res = requests.post(
            creds["token_url"],
            data={
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "grant_type": "client_credentials",
                "scope": creds["scope"],
            },
            timeout=10,
        )
        res.raise_for_status()
        return ["-H", f"Authorization: Bearer {res.json()['access_token']}"]
    if provider == "afterpay":
        return ["-H", f"X-Auth-Key: {creds['x_auth_key']}"]
    if provider == "moyasar":
        return ["-H", f"Authorization: Bearer {creds['secret_key']}"]
    return []


def prime_refund(provider: str, config: dict, auth: list[str]) -> dict | None:
    """The refund of 1.00 made on the seeded order after every (re)seed, so the reads list one
    (OpenApp: none; it has no read). As the hooks' SANDBOX_PRIME_REFUND: method, url, headers
    and JSON body."""
    headers = dict(h.split(": ", 1) for h in auth[1::2])
    headers["content-type"] = "application/json"
    order = ORDERS[provider]["id"]
    url = config[provider]["base_url"]
    if provider == "optty":
        body = {"refundReference": "st-prime", "refundAmount": {"amount": 1.00, "currency": "AUD"},
                "refundDescription": "schemathesis prime"}
        return {"url": f"{url}/orders/{order}/refund", "headers": headers, "body": body}
    if provider == "afterpay":
        body = {"captureNumber": "000000001", "items": [{
            "productId": "st-1", "description": "Prime", "netUnitPrice": 1.00, "grossUnitPrice": 1.00,
            "quantity": 1, "vatPercent": 0, "vatAmount": 0}]}
        return {"url": f"{url}/api/v3/orders/{order}/refunds", "headers": headers, "body": body}
    if provider == "moyasar":
        body = {"amount": 100, "transaction_id": "5c0e3c1e-4f8a-4d7c-9a39-000000000001"}
        return {"url": f"{url}/v1/orders/{order}/refund", "headers": headers, "body": body}
    return None


def operation_of(path: str, spec: dict) -> str:
    for template in spec["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    return "(no operation)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", 100)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SCHEMATHESIS_SEED", 20261123)))
    parser.add_argument("--provider", action="append", choices=PROVIDERS, help="only these (default: all)")
    parser.add_argument(
        "--strict-positive",
        action="store_true",
        help="a schema-valid request answered 400 fails too (lists the business-rule 400s and any limit the sandbox enforces beyond the spec)",
    )
    args = parser.parse_args()
    schemathesis = Path(sys.executable).with_name("schemathesis")

    work = Path(tempfile.mkdtemp(prefix="sandbox-schemathesis-"))
    seed_file = work / "orders.json"
    seed_file.write_text(json.dumps({p: [o] for p, o in ORDERS.items()}))
    running = start(
        sandbox_binary(),
        "--port-base", str(free_port_base()),
        "--no-demo-seed",
        "--seed-file", str(seed_file),
        "--log-level", "warn",
    )
    env = dict(
        os.environ,
        SCHEMATHESIS_HOOKS="schemathesis_hooks",
        PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        OPENAPP_API_KEY=running.config["openapp"]["credentials"]["api_key"],
        OPENAPP_API_SECRET=running.config["openapp"]["credentials"]["api_secret"],
    )
    failed: list[str] = []
    summary: list[str] = []
    started = time.monotonic()
    try:
        for provider in args.provider or PROVIDERS:
            spec_path = REPO / "generated" / provider / "openapi.normalized.json"
            spec = json.loads(spec_path.read_text())
            config_file = work / f"{provider}.toml"
            config_file.write_text(config_toml(provider, args.strict_positive))
            admin = running.admin(provider)
            admin.reset()
            admin.seed(**ORDERS[provider])
            auth = auth_headers(provider, running.config)
            prime = prime_refund(provider, running.config, auth)
            if prime:
                requests.post(prime["url"], json=prime["body"], headers=prime["headers"], timeout=10).raise_for_status()
            command = [
                str(schemathesis), "--config-file", str(config_file), "run", str(spec_path),
                "--url", running.url(provider),
                "--checks", "all",
                "--max-examples", str(args.max_examples),
                "--seed", str(args.seed),
                "--workers", "1",
                "--request-timeout", "10",
                *auth,
            ]
            print(f"\n=== {provider}: {spec_path.relative_to(REPO)}", flush=True)
            t0 = time.monotonic()
            run_env = dict(
                env,
                SANDBOX_RESEED_URL=running.config[provider]["admin_url"] + "/orders",
                SANDBOX_RESEED_ORDER=json.dumps(ORDERS[provider]),
                SANDBOX_PRIME_REFUND=json.dumps(prime) if prime else "",
            )
            result = subprocess.run(command, env=run_env, cwd=work, text=True, capture_output=True)
            took = time.monotonic() - t0
            print(result.stdout[-6000:], result.stderr[-3000:], sep="\n", flush=True)
            total = re.search(r"(\d+) generated", result.stdout)
            log = admin.requests()
            per_op = Counter(f"{r['method']} {operation_of(r['path'], spec)}" for r in log)
            documented = Counter(
                f"{r['method']} {operation_of(r['path'], spec)} -> {r['status']}"
                for r in log
                if r["method"].lower() in spec["paths"].get(operation_of(r["path"], spec), {})
            )
            summary.append(
                f"{provider}: exit {result.returncode}, {total.group(1) if total else '?'} cases generated, "
                f"{took:.1f} s\n  requests per operation (request log): "
                + ", ".join(f"{op} {n}" for op, n in sorted(per_op.items()))
                + "\n  documented operations by status: "
                + ", ".join(f"{op} {n}" for op, n in sorted(documented.items()))
            )
            if result.returncode != 0:
                failed.append(provider)
    finally:
        code = running.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("\n=== schemathesis summary")
    print("\n".join(summary))
    print(f"total {time.monotonic() - started:.1f} s; sandbox exit {code}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
