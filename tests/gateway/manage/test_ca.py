"""Where the online CA key's passphrase comes from: file (0600, first line), environment,
prompt, or a refusal that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Config
from gateway.manage.ca import PASSPHRASE_ENV, ca_passphrase, load_online_ca
from pki.ca import ISSUING_KEY, CertificateAuthority
from pki.keys import InsecureFileError, PkiError, generate_key, key_to_pem, write_secret_file


def encrypted_config(config: Config, tmp_path: Path, passphrase_file: Path | None) -> Config:
    """``config`` pointing at a CA directory whose issuing key is encrypted."""
    write_secret_file(tmp_path / "ca" / ISSUING_KEY, key_to_pem(generate_key(), b"x" * 12))
    pki = config.pki.model_copy(update={"ca_dir": tmp_path / "ca",
                                        "ca_passphrase_file": passphrase_file})
    return config.model_copy(update={"pki": pki})


def test_an_unencrypted_key_needs_no_passphrase(config: Config, ca: CertificateAuthority
                                                ) -> None:
    assert ca_passphrase(config, {PASSPHRASE_ENV: "ignored"}) is None
    assert load_online_ca(config, environ={}).issuing_cert == ca.issuing_cert


def test_the_file_wins_and_only_its_first_line_counts(config: Config, tmp_path: Path) -> None:
    secret = tmp_path / "ca-pass"
    write_secret_file(secret, b"from the file\nsecond line\n")
    encrypted = encrypted_config(config, tmp_path, secret)
    assert ca_passphrase(encrypted, {PASSPHRASE_ENV: "from env"}) == b"from the file"


@pytest.mark.parametrize(("content", "mode", "error", "message"), [
    (b"", 0o600, PkiError, "ca-pass is empty"),
    (b"\nsecond", 0o600, PkiError, "ca-pass is empty"),
    (b"readable\n", 0o644, InsecureFileError, "chmod 600"),
])
def test_bad_passphrase_files_are_refused(config: Config, tmp_path: Path, content: bytes,
                                          mode: int, error: type[Exception],
                                          message: str) -> None:
    secret = tmp_path / "ca-pass"
    secret.write_bytes(content)
    secret.chmod(mode)
    with pytest.raises(error, match=message):
        ca_passphrase(encrypted_config(config, tmp_path, secret), {})


def test_environment_then_prompt_then_a_refusal(config: Config, tmp_path: Path) -> None:
    encrypted = encrypted_config(config, tmp_path, None)
    assert ca_passphrase(encrypted, {PASSPHRASE_ENV: "from env"}, lambda: "typed") == \
        b"from env"
    assert ca_passphrase(encrypted, {}, lambda: "typed") == b"typed"
    with pytest.raises(PkiError, match=f"set {PASSPHRASE_ENV} or pki.ca_passphrase_file"):
        ca_passphrase(encrypted, {})
