"""The engine's self-signed TLS certificate: made once in the state folder, reused, pinned by clients.

Kept across restarts so that a connection file copied to a laptop stays valid while the engine's state
folder lives; the key is written with mode 0600 and never leaves the engine's machine. Made with the
`openssl` command (present on Linux and macOS GPU boxes; the engine's Python environment does not ship
the `cryptography` package): an ECDSA P-256 key, ten years, no host name (clients pin the fingerprint).
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dlatrack_engine.wire.tls_channel import fingerprint

log = logging.getLogger(__name__)

VALID_DAYS = 3650


class CertificateError(RuntimeError):
    """The certificate could not be made or read (the message names the file or the missing tool)."""


@dataclass(frozen=True)
class EngineCertificate:
    cert_file: Path
    key_file: Path
    fingerprint: str


def _read(cert_file: Path, key_file: Path) -> EngineCertificate:
    try:
        der = ssl.PEM_cert_to_DER_cert(cert_file.read_text(encoding="ascii"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CertificateError(f"TLS certificate {cert_file}: unreadable ({exc})") from exc
    return EngineCertificate(cert_file, key_file, fingerprint(der))


def ensure_certificate(folder: Path) -> EngineCertificate:
    """The certificate in `folder` (`engine.crt`, `engine.key`), made on first use."""
    cert_file, key_file = folder / "engine.crt", folder / "engine.key"
    if cert_file.is_file() and key_file.is_file():
        return _read(cert_file, key_file)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError(
            "serving remote clients needs TLS, and making its certificate needs the `openssl` command "
            "(apt-get install openssl); or keep the engine on loopback and use an SSH tunnel"
        )
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    tmp_key, tmp_cert = folder / ".engine.key.tmp", folder / ".engine.crt.tmp"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", str(tmp_key), "-out", str(tmp_cert), "-days", str(VALID_DAYS),
               "-subj", "/CN=dlatrack-engine"]  # fmt: skip
    old_umask = os.umask(0o077)  # the key is never readable by others, not even for a moment
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    finally:
        os.umask(old_umask)
    if done.returncode != 0:
        raise CertificateError(f"`openssl req` failed making the engine's TLS certificate: {done.stderr.strip()}")
    os.chmod(tmp_key, 0o600)
    os.replace(tmp_key, key_file)
    os.replace(tmp_cert, cert_file)
    made = _read(cert_file, key_file)
    log.info("made the engine's TLS certificate %s (%s)", cert_file, made.fingerprint)
    return made
