"""The server's TLS context: modern defaults, and one-line errors for bad files.

``server_context(cert, key)`` builds the ``ssl.SSLContext`` that every backend uses
for its TLS listener:

* ``PROTOCOL_TLS_SERVER`` with ``minimum_version = TLSv1_2`` (TLS 1.3 is preferred
  when the client has it); SSLv3, TLS 1.0 and TLS 1.1 clients are refused.
* TLS 1.2 cipher suites restricted to forward-secret AEAD ones (ECDHE/DHE with
  AES-GCM or ChaCha20-Poly1305), as in Mozilla's "intermediate" profile; TLS 1.3
  suites are OpenSSL's (all of them AEAD).
* No compression (CRIME), no renegotiation (a cheap CPU-exhaustion attack and never
  needed by IRC clients), fresh (EC)DH keys per handshake.
* Clients are not asked for certificates.

``cert`` is a PEM file holding the server certificate, optionally followed by the
intermediate certificates to send with it (a "full chain" file, as Let's Encrypt
writes it); ``key`` is the unencrypted PEM private key. Both files are read at
start-up only. Problems raise :class:`TLSConfigError`, whose ``which`` tells the
settings layer which option ("tls_cert", "tls_key", or None for both) is at fault.
"""

from __future__ import annotations

import os
import ssl
import stat

__all__ = ["MINIMUM_VERSION", "TLS12_CIPHERS", "TLSConfigError", "server_context"]

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!DSS"
_PEM_MAX_BYTES = 1 << 20  # a certificate chain or a key is a few kilobytes


class TLSConfigError(ValueError):
    """A TLS certificate or key problem, described in one line."""

    def __init__(self, message: str, which: str | None = None) -> None:
        super().__init__(message)
        self.which = which  # "tls_cert", "tls_key", or None when both are involved


class _EncryptedKey(Exception):
    pass


def _no_password() -> str:
    raise _EncryptedKey  # never prompt on the terminal for a key passphrase


def _read_pem(path: str, what: str, which: str, marker: bytes) -> None:
    """Check that ``path`` is a readable regular file containing a PEM ``marker``."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise TLSConfigError(f"{what} {path} is not a regular file", which)
        with open(path, "rb") as f:
            data = f.read(_PEM_MAX_BYTES + 1)
    except OSError as e:
        raise TLSConfigError(f"cannot read {what} {path}: {e.strerror or e}", which) from e
    if len(data) > _PEM_MAX_BYTES:
        raise TLSConfigError(f"{what} {path} is larger than {_PEM_MAX_BYTES} bytes", which)
    if marker not in data:
        raise TLSConfigError(
            f"{what} {path} is not in PEM format (no '-----BEGIN ...{marker.decode()}' block)",
            which,
        )


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side SSLContext for ``cert`` (chain) and ``key``; TLS 1.2 or newer."""
    _read_pem(cert, "certificate file", "tls_cert", b"CERTIFICATE-----")
    _read_pem(key, "private key file", "tls_key", b"PRIVATE KEY-----")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    ctx.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_CIPHER_SERVER_PREFERENCE
        | ssl.OP_SINGLE_DH_USE
        | ssl.OP_SINGLE_ECDH_USE
        | ssl.OP_NO_RENEGOTIATION
    )
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise TLSConfigError(
            f"private key file {key} is encrypted; give an unencrypted key "
            "(e.g. `openssl pkey -in KEY -out PLAIN`)",
            "tls_key",
        ) from None
    except ssl.SSLError as e:
        reason = e.reason or str(e)
        if reason == "KEY_VALUES_MISMATCH":
            raise TLSConfigError(
                f"private key {key} does not match the certificate in {cert}"
            ) from e
        raise TLSConfigError(
            f"cannot load certificate {cert} with key {key}: {_ssl_message(e)}"
        ) from e
    except OSError as e:  # the file vanished or changed between the check and the load
        raise TLSConfigError(
            f"cannot load certificate {cert} with key {key}: {e.strerror or e}"
        ) from e
    return ctx


def _ssl_message(e: ssl.SSLError) -> str:
    text = e.reason or e.strerror or str(e)
    lib = e.library
    return f"{lib}: {text}" if lib else str(text)
