"""Starts one sandbox process for the suite: fixed ports from a base port, a
seed file, no demo orders; stops it with SIGTERM and checks it exits 0."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sandbox_client import Running, free_port_base, sandbox_binary, start  # noqa: E402

SEED_FILE = {
    "optty": [{"id": "PY-OPTTY-1", "currency": "AUD", "captured": 120.50}],
    "afterpay": [{"id": "PY-AP-1", "currency": "EUR", "captured": 300.00, "capture_number": "000000001"}],
    "moyasar": [{"id": "PY-MY-1", "currency": "KWD", "captured": 12.345, "refunded": 0.345}],
    "openapp": [{"id": "PY-SHOP-1", "oa_order_id": "PY-OA-1", "currency": "PLN", "captured": 99.99}],
}


@pytest.fixture(scope="session")
def binary() -> Path:
    path = sandbox_binary()
    assert path.exists(), f"no sandbox binary at {path}"
    return path


@pytest.fixture(scope="session")
def port_base() -> int:
    return int(os.environ.get("SANDBOX_TEST_PORT_BASE") or free_port_base())


@pytest.fixture(scope="session")
def sandbox(binary: Path, port_base: int, tmp_path_factory: pytest.TempPathFactory) -> Running:
    seed_file = tmp_path_factory.mktemp("seed") / "orders.json"
    seed_file.write_text(json.dumps(SEED_FILE))
    running = start(
        binary,
        "--port-base", str(port_base),
        "--seed-file", str(seed_file),
        "--no-demo-seed",
        "--log-level", "warn",
    )
    yield running
    assert running.stop() == 0, "the sandbox stops cleanly on SIGTERM"


@pytest.fixture(autouse=True)
def no_faults_left(sandbox: Running):
    """Every test starts and ends without injected faults."""
    for p in ("optty", "afterpay", "moyasar", "openapp"):
        sandbox.admin(p).clear_faults()
    yield
    for p in ("optty", "afterpay", "moyasar", "openapp"):
        sandbox.admin(p).clear_faults()
