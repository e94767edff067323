"""TLS for node-to-node traffic: contexts built from a node's wallet and the channel config.

Every organisation's CA issues its members' TLS certificates, and the channel
configuration lists each organisation's TLS roots (``tls_root_certs``) and intermediate
CAs. A node therefore trusts the *bundle* of all of them: a caller of any organisation
of the channel passes the handshake, anyone else (a foreign CA, a self-signed
certificate, an expired certificate, no certificate at all) is refused by OpenSSL before
the application sees the connection. Revocation and the organisation the caller belongs
to are checked per request by :mod:`cctvchain.node.auth` through the MSP, whose view
(with its CRLs) can change while the node runs.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from cctvchain.ledger.config import ChannelConfig
from cctvchain.msp import certs
from cctvchain.msp.wallet import TLSFiles, Wallet


def trust_bundle(config: ChannelConfig) -> bytes:
    """PEM of every organisation's TLS roots and intermediate CAs, each once."""
    pems: list[bytes] = []
    for org in config.organizations:
        pems.extend(org.tls_root_certs)
        pems.extend(org.intermediate_certs)
    return bundle(pems)


def bundle(pems: Iterable[bytes]) -> bytes:
    """Concatenate PEM certificates (each may itself hold several), dropping repeats."""
    seen: dict[bytes, bytes] = {}
    for pem in pems:
        for cert in certs.parse_certificates(pem):
            seen.setdefault(certs.der(cert), certs.pem(cert))
    return b"".join(seen.values())


def _base(*, server: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _trust(context: ssl.SSLContext, trusted_pem: bytes) -> None:
    if not trusted_pem.strip():
        raise ValueError("no trusted CA certificates for TLS")
    context.load_verify_locations(cadata=trusted_pem.decode("ascii"))


def server_context(
    files: TLSFiles, trusted_pem: bytes, *, client_cert: ssl.VerifyMode = ssl.CERT_REQUIRED
) -> ssl.SSLContext:
    """A server presenting ``files``' certificate chain; with ``CERT_REQUIRED`` (the
    default) a client must present a certificate chaining to ``trusted_pem``;
    ``CERT_OPTIONAL`` lets clients without one in (a presented one must still verify)."""
    context = _base(server=True)
    context.verify_mode = client_cert
    context.load_cert_chain(certfile=str(files.cert_file), keyfile=str(files.key_file))
    _trust(context, trusted_pem)
    return context


def client_context(files: TLSFiles | None, trusted_pem: bytes) -> ssl.SSLContext:
    """A client that checks the server's name and chain against ``trusted_pem`` and
    presents ``files``' certificate (if given) for mutual TLS."""
    context = _base(server=False)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if files is not None:
        context.load_cert_chain(certfile=str(files.cert_file), keyfile=str(files.key_file))
    _trust(context, trusted_pem)
    return context


def node_server_context(wallet: Wallet, config: ChannelConfig) -> ssl.SSLContext:
    """The server side of mutual TLS for an orderer or peer of the channel."""
    return server_context(wallet.load_tls(), trust_bundle(config))


def node_client_context(wallet: Wallet, config: ChannelConfig) -> ssl.SSLContext:
    """The client side of mutual TLS, for calls from one node to another."""
    return client_context(wallet.load_tls(), trust_bundle(config))


def add_trust(context: ssl.SSLContext, config: ChannelConfig) -> None:
    """Trust the TLS roots of a newer channel configuration too (e.g. a new organisation)
    for new connections. OpenSSL cannot forget a root: an organisation removed from the
    channel is refused by the MSP check of :mod:`cctvchain.node.auth` instead."""
    _trust(context, trust_bundle(config))
