"""``ssl`` contexts for mutual TLS with certificates issued by the organisations' CAs.

Both sides present a certificate and require one from the other side that chains to
one of the trusted roots. ``VERIFY_X509_STRICT`` is on, so OpenSSL also enforces the
RFC 5280 details (key identifiers, critical basic constraints) our CA puts in.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def _context(purpose: int, cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    context.load_verify_locations(cafile=str(ca_file))
    return context


def server_context(cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """A server that requires a client certificate chaining to a root in ``ca_file``."""
    return _context(ssl.PROTOCOL_TLS_SERVER, cert_file, key_file, ca_file)


def client_context(cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """A client that presents its certificate and checks the server's name and chain."""
    context = _context(ssl.PROTOCOL_TLS_CLIENT, cert_file, key_file, ca_file)
    context.check_hostname = True
    return context
