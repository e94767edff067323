"""Which organisation a caller's certificate belongs to (cctvchain/node/auth.py), with its
issuer remembered between requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cctvchain.msp.errors import CertificateRevoked, MalformedCertificate, NotChainedToMSP
from cctvchain.msp.identity import MSPManager
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.node.auth import IdentityResolver

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_remembered_issuer_never_skips_validation_in_the_msp_of_the_moment() -> None:
    city = InMemoryOrg("CityCCTV", "CityCCTV", NOW - timedelta(days=1))
    police = InMemoryOrg("Police", "Police", NOW - timedelta(days=1))
    officer = police.new_identity("officer", "client", now=NOW)
    resolver = IdentityResolver()
    manager = MSPManager([city.msp(), police.msp()])
    for _ in range(3):
        assert resolver.identify(manager, officer.cert_pem, NOW).msp_id == "Police"
    police.revoke(name="officer", now=NOW)
    revoked = MSPManager([city.msp(), police.msp([police.crl(NOW)])])
    with pytest.raises(CertificateRevoked):
        resolver.identify(revoked, officer.cert_pem, NOW)
    without_police = MSPManager([city.msp()])
    with pytest.raises(NotChainedToMSP, match="does not chain to any organisation"):
        resolver.identify(without_police, officer.cert_pem, NOW)


def test_garbage_is_refused_every_time_and_the_memory_stays_bounded() -> None:
    city = InMemoryOrg("CityCCTV", "CityCCTV", NOW - timedelta(days=1))
    manager = MSPManager([city.msp()])
    resolver = IdentityResolver()
    resolver.ISSUER_CACHE_SIZE = 2
    for _ in range(2):
        with pytest.raises(MalformedCertificate):
            resolver.identify(manager, b"not a certificate", NOW)
    people = [city.new_identity(f"user{k}", "client", now=NOW) for k in range(5)]
    for person in people * 2:
        assert resolver.identify(manager, person.cert_pem, NOW).msp_id == "CityCCTV"
        assert len(resolver._issuers) <= 2
