"""`certgate init` makes the secrets key, and on an existing install adds the keys it
lacks, where its config puts them, without touching anything else."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from gateway.auth.secretbox import load_secret_box
from tests.gateway.cli.conftest import Certgate


def _files(data_dir: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in data_dir.rglob("*") if p.is_file()}


def test_init_makes_the_secrets_key(cg: Certgate) -> None:
    key = cg.data_dir / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    load_secret_box(key)  # a key the gateway accepts


def test_init_on_an_existing_install_adds_the_missing_key_only(cg: Certgate) -> None:
    key = cg.data_dir / "secrets.key"
    key.unlink()  # an install made before init created the secrets key
    before = _files(cg.data_dir)
    # Options for a new install are not used: nothing is asked, nothing else changes.
    result = cg("init", "--data-dir", str(cg.data_dir), "--hostname", "other.test",
                "--ca-name", "Other", config=False)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"{cg.data_dir} is already set up; init overwrites nothing there. Added what was "
        "missing:",
        f"  secrets key   {key} (0600; seals the TOTP secrets)",
        "Everything else (config, CA, certificates, other keys, database) is as it was.",
    ]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    after = _files(cg.data_dir)
    assert after.pop(key)
    assert after == before
    # Run again: the key stays as it is, and init says there was nothing to do.
    sealed = key.read_bytes()
    result = cg("init", "--data-dir", str(cg.data_dir), config=False)
    assert result.code == 1 and "nothing was changed" in result.err
    assert key.read_bytes() == sealed


def test_the_key_goes_where_the_config_says(cg: Certgate) -> None:
    (cg.data_dir / "secrets.key").unlink()
    data = yaml.safe_load(cg.config.read_text())
    data["auth"] = {"secrets_key": "private/totp.key"}
    cg.config.write_text(yaml.safe_dump(data))
    result = cg("init", "--data-dir", str(cg.data_dir), config=False)
    assert result.code == 0, result.err
    key = cg.data_dir / "private" / "totp.key"
    assert f"  secrets key   {key} (0600;" in result.out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (cg.data_dir / "secrets.key").exists()


def test_an_existing_install_with_a_broken_config_is_left_alone(cg: Certgate) -> None:
    (cg.data_dir / "secrets.key").unlink()
    cg.config.write_text(cg.config.read_text() + "bogus_key: 1\n")
    before = _files(cg.data_dir)
    result = cg("init", "--data-dir", str(cg.data_dir), config=False)
    assert result.code == 1
    assert "invalid config" in result.err and "unknown key 'bogus_key'" in result.err
    assert _files(cg.data_dir) == before


def test_an_unwritable_key_path_is_one_sentence(cg: Certgate) -> None:
    (cg.data_dir / "secrets.key").unlink()
    data = yaml.safe_load(cg.config.read_text())
    # A regular file where the key's directory should be: refused even for root.
    data["auth"] = {"secrets_key": "certgate.db/secrets.key"}
    cg.config.write_text(yaml.safe_dump(data))
    result = cg("init", "--data-dir", str(cg.data_dir), config=False)
    assert result.code == 1
    assert result.err.startswith(
        f"certgate: cannot write the secrets key {cg.data_dir}/certgate.db/secrets.key: ")
    assert "\n" not in result.err.strip()


def test_an_install_from_before_the_audit_key_gets_it(cg: Certgate) -> None:
    key, pub = cg.data_dir / "audit.key", cg.data_dir / "audit.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and pub.exists()
    key.unlink()
    pub.unlink()
    result = cg("init", "--data-dir", str(cg.data_dir), config=False)
    assert result.code == 0, result.err
    assert f"  audit key     {key} (0600; signs the audit checkpoints;" in result.out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and pub.exists()
