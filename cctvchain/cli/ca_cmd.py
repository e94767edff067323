"""``cctvchain ca init|register|enroll|revoke|gencrl|show``: the organisation's CA.

The CA runs in-process on its directory (see :mod:`cctvchain.msp.store`); the registry
is locked while a command changes it, so concurrent invocations do not race.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.x509.oid import NameOID

from cctvchain.cli.errors import CliError
from cctvchain.crypto import SigningKey
from cctvchain.msp import certs
from cctvchain.msp.ca import (
    REVOCATION_REASONS,
    CertificateAuthority,
    create_ca_material,
)
from cctvchain.msp.errors import CAError, MSPError, StoreError
from cctvchain.msp.files import write_atomic
from cctvchain.msp.registry import IdentityRecord, Registry
from cctvchain.msp.requests import make_register_request, make_revoke_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet, WalletIdentity

_Command = Callable[[argparse.Namespace], int]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "ca",
        help="the organisation's certificate authority (init, register, enroll, revoke, ...)",
        description="Run the organisation's certificate authority from its directory.",
    )
    actions = parser.add_subparsers(dest="ca_command", metavar="ACTION")
    actions.required = True

    init = actions.add_parser(
        "init",
        help="create a CA and its bootstrap registrar",
        description="Create a root CA (and optionally an intermediate CA that issues "
        "everything) and register a bootstrap admin that may register every type.",
    )
    _dir_option(init, "directory to create the CA in")
    init.add_argument("--org", required=True, help="organisation name (the O of every cert)")
    init.add_argument("--msp-id", required=True, help="MSP id of the organisation")
    init.add_argument(
        "--intermediate", action="store_true", help="issue through an intermediate CA"
    )
    init.add_argument("--admin", default="admin", help="bootstrap registrar name")
    init.add_argument("--admin-secret", help="its enrollment secret (default: random)")
    init.set_defaults(func=_guarded(_init))

    register = actions.add_parser(
        "register",
        help="register an identity (as a registrar)",
        description="Register an identity; prints its single-use enrollment secret.",
    )
    _dir_option(register)
    register.add_argument("--registrar", required=True, type=Path, help="registrar's wallet")
    register.add_argument("--name", required=True, help="identity name (the CN)")
    register.add_argument(
        "--type", required=True, choices=sorted(certs.ID_TYPES), help="identity type (the OU)"
    )
    register.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="attribute carried in the certificate, e.g. role=CRM (repeatable)",
    )
    register.add_argument("--secret", help="enrollment secret (default: random)")
    register.set_defaults(func=_guarded(_register))

    enroll = actions.add_parser(
        "enroll",
        help="enroll a registered identity into a wallet",
        description="Generate a key locally, send a CSR with the enrollment secret, and "
        "write the key and certificate into the wallet directory.",
    )
    _dir_option(enroll)
    enroll.add_argument("--name", required=True, help="identity name")
    enroll.add_argument("--secret", required=True, help="enrollment secret")
    enroll.add_argument("--wallet", required=True, type=Path, help="wallet directory to write")
    enroll.add_argument(
        "--profile",
        choices=("msp", "tls"),
        default="msp",
        help="msp: signing identity (default); tls: TLS client/server certificate",
    )
    enroll.add_argument(
        "--hosts", default="", help="comma-separated host names and IPs (tls profile)"
    )
    enroll.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    enroll.set_defaults(func=_guarded(_enroll))

    revoke = actions.add_parser(
        "revoke",
        help="revoke an identity or one certificate (as a registrar)",
        description="Revoke every certificate of an identity (and block its enrollment), "
        "or a single certificate by serial number.",
    )
    _dir_option(revoke)
    revoke.add_argument("--registrar", required=True, type=Path, help="registrar's wallet")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--name", help="identity to revoke")
    target.add_argument("--serial", help="certificate serial number (hex) to revoke")
    revoke.add_argument(
        "--reason",
        default="unspecified",
        help=f"one of: {', '.join(flag.value for flag in REVOCATION_REASONS.values())}",
    )
    revoke.add_argument("--gencrl", action="store_true", help="then regenerate crl.pem")
    revoke.set_defaults(func=_guarded(_revoke))

    gencrl = actions.add_parser(
        "gencrl",
        help="generate the CRL",
        description="Sign a CRL of every revoked certificate and write it to crl.pem.",
    )
    _dir_option(gencrl)
    gencrl.add_argument("--out", type=Path, help="also write the CRL to this file")
    gencrl.add_argument(
        "--days", type=int, default=7, help="days until the next update (default 7)"
    )
    gencrl.set_defaults(func=_guarded(_gencrl))

    show = actions.add_parser(
        "show",
        help="show the CA and its identities",
        description="Show the CA subject, MSP id, root fingerprint and every identity.",
    )
    _dir_option(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_guarded(_show))


def _dir_option(parser: argparse.ArgumentParser, text: str = "the CA directory") -> None:
    parser.add_argument("--dir", required=True, type=Path, metavar="DIR", help=text)


def _guarded(command: _Command) -> _Command:
    """Turn every refusal of the CA, the MSP or the store into a one-line CLI error."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (CAError, MSPError, StoreError) as exc:
            raise CliError(str(exc)) from exc
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise CliError(f"{exc.strerror or exc}{where}") from exc

    return run


def _now() -> datetime:
    return datetime.now(UTC)


def _init(args: argparse.Namespace) -> int:
    store = CAStore(args.dir)
    if store.exists:
        raise CliError(f"{args.dir} already holds a CA")
    now = _now()
    material = create_ca_material(args.org, args.msp_id, now, intermediate=args.intermediate)
    # Register the bootstrap admin before anything is written, so that a refused
    # name or secret leaves no half-made CA behind.
    ca = CertificateAuthority(material, Registry())
    secret = ca.register_bootstrap(args.admin, now, secret=args.admin_secret)
    CAStore.initialize(args.dir, material, ca.registry)
    print(f"created CA for {args.org} (MSP {args.msp_id}) in {args.dir}")
    print(f"root CA fingerprint (SHA-256): {certs.fingerprint_hex(material.root_cert)}")
    if material.intermediate_cert is not None:
        print(f"issuing through {certs.subject_summary(material.intermediate_cert.subject)}")
    print(f"bootstrap registrar: {args.admin} (type admin, registrar=*)")
    print(f"enrollment secret for {args.admin} (shown once): {secret}")
    return 0


def _registrar(store: CAStore, wallet_dir: Path) -> WalletIdentity:
    identity = Wallet(wallet_dir).load()
    msp_id = store.info()["msp_id"]
    if identity.msp_id != msp_id:
        raise CliError(f"registrar {identity.name} belongs to {identity.msp_id}, not {msp_id}")
    return identity


def _parse_attributes(items: list[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--attr {item!r} is not KEY=VALUE")
        if key in attributes:
            raise CliError(f"attribute {key} given twice")
        attributes[key] = value
    return attributes


def _register(args: argparse.Namespace) -> int:
    store = CAStore(args.dir)
    registrar = _registrar(store, args.registrar)
    now = _now()
    request = make_register_request(
        registrar.signing_key,
        registrar.cert_pem,
        name=args.name,
        id_type=args.type,
        now=now,
        attributes=_parse_attributes(args.attr),
        secret=args.secret,
    )
    with store.open() as ca:
        secret = ca.register(request, now)
    print(f"enrollment secret for {args.name} (shown once): {secret}")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise CliError("--days must be at least 1")
    store = CAStore(args.dir)
    msp_id = store.info()["msp_id"]
    wallet = Wallet(args.wallet)
    wallet.check_writable(args.name, msp_id, args.profile)
    hosts = [host.strip() for host in args.hosts.split(",") if host.strip()]
    key = SigningKey.generate()
    now = _now()
    with store.open() as ca:
        cert_pem = ca.enroll(
            args.name,
            args.secret,
            certs.build_csr(key, args.name),
            now,
            profile=args.profile,
            hosts=hosts,
            validity=timedelta(days=args.days),
        )
        id_type = ca.identity(args.name).id_type
    # The registry is saved first: a certificate the CA has not recorded could not be
    # revoked by name, whereas a lost wallet write only costs a new registration.
    root_pem, intermediate_pems = store.ca_chain_pems()
    wallet.save(
        profile=args.profile,
        name=args.name,
        msp_id=msp_id,
        id_type=id_type,
        key=key,
        cert_pem=cert_pem,
        root_pem=root_pem,
        intermediate_pems=intermediate_pems,
    )
    cert = certs.parse_certificate(cert_pem)
    print(
        f"enrolled {args.name} ({id_type}, {msp_id}): {args.profile} certificate "
        f"{cert.serial_number:x}, valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    )
    print(f"wallet: {args.wallet}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = CAStore(args.dir)
    registrar = _registrar(store, args.registrar)
    serial = None
    if args.serial is not None:
        try:
            serial = int(args.serial.replace(":", ""), 16)
        except ValueError:
            raise CliError(f"--serial {args.serial!r} is not hexadecimal") from None
    now = _now()
    request = make_revoke_request(
        registrar.signing_key,
        registrar.cert_pem,
        now=now,
        name=args.name,
        serial=serial,
        reason=args.reason,
    )
    with store.open() as ca:
        revoked = ca.revoke(request, now)
        crl = ca.generate_crl(now, now + timedelta(days=7)) if args.gencrl else None
        if crl is not None:
            store.write_crl(crl)
    target = args.name if args.name is not None else f"certificate {args.serial}"
    listed = ", ".join(f"{s:x}" for s in revoked) or "none enrolled"
    print(f"revoked {target}: {len(revoked)} certificate(s) ({listed})")
    if crl is None:
        print("run `cctvchain ca gencrl` to publish the revocation in a CRL")
    else:
        print(f"wrote {store.path('crl.pem')}")
    return 0


def _gencrl(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise CliError("--days must be at least 1")
    store = CAStore(args.dir)
    now = _now()
    with store.open() as ca:
        crl = ca.generate_crl(now, now + timedelta(days=args.days))
        count = len(ca.registry.revoked_certificates())
        number = ca.registry.crl_number
        path = store.write_crl(crl)
    if args.out is not None:
        write_atomic(args.out, crl)
    print(f"CRL #{number} with {count} revoked certificate(s) written to {path}")
    if args.out is not None:
        print(f"also written to {args.out}")
    return 0


def _identity_json(record: IdentityRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "type": record.id_type,
        "attributes": dict(record.attributes),
        "status": record.status,
        "registered_by": record.registered_by,
        "certificates": [
            {
                "serial": f"{issued.serial:x}",
                "profile": issued.profile,
                "not_after": issued.not_after.isoformat(),
                "revoked": issued.revoked_at is not None,
            }
            for issued in record.certificates
        ],
    }


def _show(args: argparse.Namespace) -> int:
    store = CAStore(args.dir)
    with store.open(write=False) as ca:
        material = ca.material
        identities = [_identity_json(record) for record in ca.registry.identities.values()]
    issuer = material.intermediate_cert
    summary = {
        "org_name": material.org_name,
        "msp_id": material.msp_id,
        "subject": certs.subject_summary(material.root_cert.subject),
        "root_fingerprint": certs.fingerprint_hex(material.root_cert),
        "not_after": material.root_cert.not_valid_after_utc.isoformat(),
        "intermediate": None if issuer is None else certs.subject_summary(issuer.subject),
        "identities": identities,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"CA:          {summary['subject']}  (MSP {material.msp_id})")
    print(f"fingerprint: {summary['root_fingerprint']}")
    print(f"valid until: {material.root_cert.not_valid_after_utc:%Y-%m-%d}")
    if issuer is not None:
        cn = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        print(f"issuing CA:  {cn!s}")
    print(f"identities:  {len(identities)}")
    for item in identities:
        attributes = ",".join(f"{k}={v}" for k, v in sorted(item["attributes"].items()))
        serials = " ".join(
            f"{c['serial']}[{c['profile']}{', revoked' if c['revoked'] else ''}]"
            for c in item["certificates"]
        )
        print(
            f"  {item['name']:<16} {item['type']:<8} {item['status']:<10} "
            f"{attributes or '-'}  {serials or '-'}"
        )
    return 0
