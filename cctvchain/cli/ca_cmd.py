"""``cctvchain ca init|register|enroll|revoke|gencrl|show``: the organisation's CA.

Local mode (``--dir DIR``): the CA runs in-process on its directory (see
:mod:`cctvchain.msp.store`); the registry is locked while a command changes it, so
concurrent invocations (and a CA node on the same directory) do not race.

Remote mode (``--url https://HOST:PORT``): the same commands against a CA node
(:mod:`cctvchain.node.ca_service`) over HTTPS. The CA's TLS certificate is checked
against ``--tls-ca FILE``, by default the organisation's root certificate found in the
wallet involved (registrar or target wallet) or in ``--dir``. Registration and
revocation are still signed locally with the registrar's key; enrollment keys are
generated locally and only the CSR travels.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509
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
from cctvchain.msp.identity import MSP
from cctvchain.msp.registry import IdentityRecord, Registry
from cctvchain.msp.requests import make_register_request, make_revoke_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet, WalletIdentity
from cctvchain.node.errors import NodeClientError

if TYPE_CHECKING:  # the HTTP client (aiohttp) is loaded only in remote mode
    from cctvchain.node.ca_client import Enrollment, RemoteCA

_Command = Callable[[argparse.Namespace], int]
_T = TypeVar("_T")


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
    _location_options(register)
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
    _location_options(enroll)
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
    _location_options(revoke)
    revoke.add_argument("--registrar", required=True, type=Path, help="registrar's wallet")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--name", help="identity to revoke")
    target.add_argument("--serial", help="certificate serial number (hex) to revoke")
    revoke.add_argument(
        "--reason",
        default="unspecified",
        help=f"one of: {', '.join(flag.value for flag in REVOCATION_REASONS.values())}",
    )
    revoke.add_argument(
        "--gencrl",
        action="store_true",
        help="then regenerate crl.pem (a CA node, --url, always publishes a new CRL)",
    )
    revoke.set_defaults(func=_guarded(_revoke))

    gencrl = actions.add_parser(
        "gencrl",
        help="generate the CRL",
        description="Sign a CRL of every revoked certificate and write it to crl.pem. "
        "With --url, fetch the CA node's current CRL (to --out, or to stdout).",
    )
    _location_options(gencrl)
    gencrl.add_argument("--out", type=Path, help="also write the CRL to this file")
    gencrl.add_argument(
        "--days", type=int, help="days until the next update (default 7; local CA only)"
    )
    gencrl.set_defaults(func=_guarded(_gencrl))

    show = actions.add_parser(
        "show",
        help="show the CA and its identities",
        description="Show the CA subject, MSP id, root fingerprint and every identity.",
    )
    _location_options(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_guarded(_show))


def _dir_option(parser: argparse.ArgumentParser, text: str = "the CA directory") -> None:
    parser.add_argument("--dir", required=True, type=Path, metavar="DIR", help=text)


def _location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the CA directory (with --url: only where the root certificate to trust is read)",
    )
    parser.add_argument(
        "--url", metavar="URL", help="a CA node instead of a directory, e.g. https://127.0.0.1:7054"
    )
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help="with --url: the CA certificate(s) to trust for its TLS (default: the "
        "organisation's root from the wallet involved, or from --dir)",
    )


def _guarded(command: _Command) -> _Command:
    """Turn every refusal of the CA, the MSP or the store into a one-line CLI error."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (CAError, MSPError, StoreError, NodeClientError) as exc:
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
    if args.url is not None:
        return _register_remote(args)
    store = _local_store(args)
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
    if args.url is not None:
        return _enroll_remote(args)
    store = _local_store(args)
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


def _serial(args: argparse.Namespace) -> int | None:
    if args.serial is None:
        return None
    try:
        return int(args.serial.replace(":", ""), 16)
    except ValueError:
        raise CliError(f"--serial {args.serial!r} is not hexadecimal") from None


def _revoke(args: argparse.Namespace) -> int:
    if args.url is not None:
        return _revoke_remote(args)
    store = _local_store(args)
    registrar = _registrar(store, args.registrar)
    serial = _serial(args)
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
    if args.url is not None:
        return _gencrl_remote(args)
    days = 7 if args.days is None else args.days
    if days < 1:
        raise CliError("--days must be at least 1")
    store = _local_store(args)
    now = _now()
    with store.open() as ca:
        crl = ca.generate_crl(now, now + timedelta(days=days))
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
    if args.url is not None:
        return _show_remote(args)
    store = _local_store(args)
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


# -- remote mode: a CA node over HTTPS ----------------------------------------------------


def _local_store(args: argparse.Namespace) -> CAStore:
    if args.tls_ca is not None:
        raise CliError("--tls-ca applies only with --url", exit_code=2)
    if args.dir is None:
        raise CliError(
            "give --dir DIR (a local CA directory) or --url URL (a CA node)", exit_code=2
        )
    return CAStore(args.dir)


def _trusted_pem(args: argparse.Namespace, wallets: Sequence[Path | None] = ()) -> bytes:
    """What to trust for the CA node's TLS: --tls-ca, else the organisation's root from
    a wallet involved in the command, else the root in --dir."""
    if args.tls_ca is not None:
        try:
            data = Path(args.tls_ca).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read --tls-ca {args.tls_ca}: {exc.strerror or exc}") from exc
        if not _parse_bundle(data):
            raise CliError(f"--tls-ca {args.tls_ca} holds no PEM certificate")
        return data
    for wallet in wallets:
        if wallet is None:
            continue
        for candidate in (wallet / "msp" / "cacerts" / "ca.pem", wallet / "tls" / "ca.pem"):
            if candidate.is_file():
                return candidate.read_bytes()
    if args.dir is not None:
        root, _ = CAStore(args.dir).ca_chain_pems()
        return root
    raise CliError(
        f"no certificate to trust for the CA at {args.url}: pass --tls-ca FILE (the "
        "organisation's root certificate, e.g. a wallet's msp/cacerts/ca.pem or the CA "
        "directory's ca-cert.pem)"
    )


def _parse_bundle(data: bytes) -> list[bytes]:
    try:
        return [certs.der(cert) for cert in certs.parse_certificates(data)]
    except MSPError:
        return []


def _call(
    args: argparse.Namespace, trusted: bytes, operation: Callable[[RemoteCA], Awaitable[_T]]
) -> _T:
    """Run one exchange with the CA node at --url."""

    from cctvchain.node.ca_client import RemoteCA

    async def run() -> _T:
        async with RemoteCA(args.url, trusted) as ca:
            return await operation(ca)

    try:
        return asyncio.run(run())
    except (ssl.SSLError, ValueError) as exc:
        raise CliError(f"cannot use the trusted certificate(s) for the CA's TLS: {exc}") from exc


def _register_remote(args: argparse.Namespace) -> int:
    trusted = _trusted_pem(args, [args.registrar])
    registrar = Wallet(args.registrar).load()
    request = make_register_request(
        registrar.signing_key,
        registrar.cert_pem,
        name=args.name,
        id_type=args.type,
        now=_now(),
        attributes=_parse_attributes(args.attr),
        secret=args.secret,
    )
    secret = _call(args, trusted, lambda ca: ca.register(request))
    print(f"enrollment secret for {args.name} (shown once): {secret}")
    return 0


def _enroll_remote(args: argparse.Namespace) -> int:
    trusted = _trusted_pem(args, [args.wallet])
    wallet = Wallet(args.wallet)
    hosts = [host.strip() for host in args.hosts.split(",") if host.strip()]
    key = SigningKey.generate()

    async def exchange(ca: RemoteCA) -> Enrollment:
        info = await ca.cainfo()
        # Refuse before the single-use secret is spent if the result could not be kept.
        wallet.check_writable(args.name, info.msp_id, args.profile)
        return await ca.enroll(
            args.name,
            args.secret,
            certs.build_csr(key, args.name),
            profile=args.profile,
            hosts=hosts,
            days=args.days,
        )

    enrollment = _call(args, trusted, exchange)
    cert = _check_enrollment(enrollment, key, trusted)
    wallet.save(
        profile=args.profile,
        name=args.name,
        msp_id=enrollment.msp_id,
        id_type=enrollment.id_type,
        key=key,
        cert_pem=enrollment.cert_pem,
        root_pem=enrollment.root_pem,
        intermediate_pems=enrollment.intermediate_pems,
    )
    print(
        f"enrolled {args.name} ({enrollment.id_type}, {enrollment.msp_id}): {args.profile} "
        f"certificate {cert.serial_number:x}, valid until "
        f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    )
    print(f"wallet: {args.wallet}")
    return 0


def _check_enrollment(enrollment: Enrollment, key: SigningKey, trusted: bytes) -> x509.Certificate:
    """The certificate the CA node sent, once it is shown to be ours and well issued."""
    try:
        cert = certs.parse_certificate(enrollment.cert_pem)
    except MSPError as exc:
        raise CliError(f"the CA sent an unusable certificate: {exc}") from exc
    if cert.public_key() != key.native.public_key():
        raise CliError("the CA sent a certificate for another key; nothing was saved")
    root = certs.der(certs.parse_certificate(enrollment.root_pem))
    if root not in _parse_bundle(trusted):
        raise CliError(
            "the CA's root certificate is not the one trusted for its TLS; nothing was saved"
        )
    msp = MSP(enrollment.msp_id, [enrollment.root_pem], enrollment.intermediate_pems)
    try:
        msp.validate(enrollment.cert_pem, _now())
    except MSPError as exc:
        raise CliError(f"the CA sent a certificate that does not validate: {exc}") from exc
    return cert


def _revoke_remote(args: argparse.Namespace) -> int:
    trusted = _trusted_pem(args, [args.registrar])
    registrar = Wallet(args.registrar).load()
    request = make_revoke_request(
        registrar.signing_key,
        registrar.cert_pem,
        now=_now(),
        name=args.name,
        serial=_serial(args),
        reason=args.reason,
    )
    revocation = _call(args, trusted, lambda ca: ca.revoke(request))
    target = args.name if args.name is not None else f"certificate {args.serial}"
    listed = ", ".join(f"{s:x}" for s in revocation.serials) or "none enrolled"
    print(f"revoked {target}: {len(revocation.serials)} certificate(s) ({listed})")
    print(f"the CA published CRL #{revocation.crl_number}")
    return 0


def _gencrl_remote(args: argparse.Namespace) -> int:
    if args.days is not None:
        raise CliError(
            "--days applies to a local CA (--dir); a CA node sets its CRLs' next update",
            exit_code=2,
        )
    trusted = _trusted_pem(args)
    crl = _call(args, trusted, lambda ca: ca.crl())
    if args.out is None:
        sys.stdout.write(crl.crl_pem.decode("ascii"))
        return 0
    write_atomic(args.out, crl.crl_pem)
    number = "?" if crl.crl_number is None else crl.crl_number
    print(
        f"CRL #{number} with {len(crl.revoked)} revoked certificate(s) from {args.url} "
        f"written to {args.out}"
    )
    return 0


def _show_remote(args: argparse.Namespace) -> int:
    trusted = _trusted_pem(args)
    info = _call(args, trusted, lambda ca: ca.cainfo())
    summary = {
        "url": args.url,
        "org_name": info.org_name,
        "msp_id": info.msp_id,
        "subject": info.subject,
        "root_fingerprint": info.root_fingerprint,
        "not_after": info.not_after,
        "intermediate": info.intermediate,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"CA:          {info.subject}  (MSP {info.msp_id})")
    print(f"fingerprint: {info.root_fingerprint}")
    print(f"valid until: {info.not_after[:10]}")
    if info.intermediate is not None:
        print(f"issuing CA:  {info.intermediate}")
    print(f"served at:   {args.url} (its identities are listed only with --dir)")
    return 0
