"""The foundation walkthrough: six steps over real CAs, wallets, MSPs and a LevelDB ledger.

Each step prints what it does as it does it, and checks that what should happen did:
a refusal that does not come, or comes for another reason, stops the demo with a
:class:`~cctvchain.demo.DemoError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cctvchain.demo import DemoError
from cctvchain.demo import config_update as update
from cctvchain.demo.participants import (
    CITY,
    ORGANISATIONS,
    PARTICIPANTS,
    POLICE,
    Participant,
    enroll,
    participant,
)
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.errors import (
    CertificateRevoked,
    MSPError,
    NotChainedToMSP,
    WrongIdentityType,
)
from cctvchain.msp.identity import Identity, MSPManager
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import Endpoint, NetworkConfig, NetworkConfigError
from cctvchain.network.material import NetworkMaterial, ensure_material

STEPS = 6
LEDGER_DIR = "ledger"
REVOKED, KEPT, CAMERA, OFFICER = "operator2", "operator1", "camera-001", "officer"
REVOCATION_REASON = "cessationOfOperation"  # the operator left the control room
Out = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    ledger: Path
    height: int
    config_sequence: int


class Narrator:
    """Numbered step headings and indented detail lines."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        self.out(f"[{self.number}/{STEPS}] {title}")

    def say(self, text: str) -> None:
        self.out(f"      {text}")

    def accepted(self, who: str, identity: Identity) -> None:
        role = identity.role or "-"
        self.say(f"accepted  {who}: MSP {identity.msp_id}, type {identity.id_type}, role {role}")

    def refused(self, what: str, error: MSPError) -> None:
        self.say(f"refused   {what}: {type(error).__name__}")
        self.say(f"          ({error})")

    def path(self, path: Path) -> str:
        return display_path(path)


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _short(digest: bytes) -> str:
    return digest.hex()[:16]


def _node(nodes: tuple[Endpoint, ...], org: str) -> Endpoint:
    """The organisation's first node of a kind, else the network's first."""
    return next((node for node in nodes if node.org == org), nodes[0])


def run(config: NetworkConfig, now: datetime, out: Out) -> DemoResult:
    """Run every step in ``config.nodes_dir`` (which should be empty)."""
    try:
        for name in ORGANISATIONS:
            config.org(name)
    except NetworkConfigError as exc:
        raise DemoError(
            f"the demo needs the organisations {', '.join(ORGANISATIONS)} "
            f"(as in configs/local.toml): {exc}"
        ) from exc
    say = Narrator(out)
    material = _step_material(say, config, now)
    wallets = _step_participants(say, config, now)
    peer = _node(config.peers, CITY)
    ledger_path = material.node_dirs[peer.name] / LEDGER_DIR
    ledger = _step_ledger(say, material, peer, ledger_path)
    try:
        _step_identities(say, config, material, ledger, wallets, now)
        _step_revocation(say, config, material, ledger, wallets, now)
        ledger = _step_reopen(say, ledger, ledger_path)
        result = DemoResult(ledger_path, ledger.height, ledger.channel_config().sequence)
    finally:
        ledger.close()
    _where(say, config, material, ledger_path)
    return result


# -- steps ---------------------------------------------------------------------------------


def _step_material(say: Narrator, config: NetworkConfig, now: datetime) -> NetworkMaterial:
    say.step("Organisations: certificate authorities, admins, orderer and peer identities")
    material = ensure_material(config, now, log=say.say)
    if not material.created:
        say.say("(all material already existed and was reused)")
    return material


def _step_participants(say: Narrator, config: NetworkConfig, now: datetime) -> dict[str, Path]:
    say.step("Participants: registered by their organisation's admin, enrolled with roles")
    wallets = {}
    for who in PARTICIPANTS:
        wallets[who.name] = enroll(config, who, now)
        role = f"role={who.role}" if who.role else "-"
        say.say(f"{who.label:<26} {who.id_type:<7} {role:<14} {who.title}")
    return wallets


def _step_ledger(say: Narrator, material: NetworkMaterial, peer: Endpoint, path: Path) -> Ledger:
    say.step(f"Genesis block and {peer.name}'s ledger")
    block = material.genesis_block()
    channel = material.channel_config()
    say.say(
        f"genesis block {say.path(material.genesis)}: {len(block.encode())} bytes, "
        f"hash {_short(block.hash())}, config sequence {channel.sequence}"
    )
    ledger = Ledger.open(path, create=True)
    try:
        if ledger.height == 0:
            ledger.append_block(block)
        config = ledger.channel_config()
    except BaseException:
        ledger.close()
        raise
    say.say(f"ledger {say.path(path)} (LevelDB index + block files)")
    say.say(f"height {ledger.height}, head {_short(ledger.head_hash)}, channel {config.channel_id}")
    say.say(
        "organisations: " + ", ".join(f"{o.name} (MSP {o.msp_id})" for o in config.organizations)
    )
    say.say("orderers: " + ", ".join(f"{o.name} {o.host}:{o.port}" for o in config.orderers))
    return ledger


def _cert(wallets: dict[str, Path], name: str) -> bytes:
    return Wallet(wallets[name]).load().cert_pem


def _msp_id(config: NetworkConfig, who: Participant) -> str:
    return config.org(who.org).msp_id


def _expect_refusal(
    msps: MSPManager,
    msp_id: str,
    cert: bytes,
    now: datetime,
    allowed: tuple[str, ...] | None,
    expected: type[MSPError],
) -> MSPError:
    try:
        identity = msps.validate(msp_id, cert, now, allowed)
    except MSPError as exc:
        if isinstance(exc, expected):
            return exc
        raise DemoError(f"expected {expected.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise DemoError(f"expected {expected.__name__}, but {identity.name} was accepted")


def _step_identities(
    say: Narrator,
    config: NetworkConfig,
    material: NetworkMaterial,
    ledger: Ledger,
    wallets: dict[str, Path],
    now: datetime,
) -> None:
    say.step("Identities checked against the channel's MSPs (from the ledger's config)")
    msps = MSPManager.from_channel_config(ledger.channel_config())
    for who in PARTICIPANTS:
        identity = msps.validate(_msp_id(config, who), _cert(wallets, who.name), now)
        say.accepted(who.label, identity)
    for kind, nodes in (("orderer", config.orderers), ("peer", config.peers)):
        for node in nodes:
            cert = Wallet(material.node_wallet(node.name)).load().cert_pem
            msps.validate(config.org(node.org).msp_id, cert, now, (kind,))
    say.say(
        f"accepted  {len(config.orderers)} orderer and {len(config.peers)} peer "
        "certificates, each as its own type"
    )
    officer = participant(OFFICER)
    error = _expect_refusal(
        msps, config.org(CITY).msp_id, _cert(wallets, OFFICER), now, None, NotChainedToMSP
    )
    say.refused(f"{officer.label}'s certificate claimed as {CITY}", error)
    error = _expect_refusal(
        msps, config.org(CITY).msp_id, _cert(wallets, CAMERA), now, ("client",), WrongIdentityType
    )
    say.refused(f"{CAMERA}@{CITY} where only client identities are allowed", error)


def _step_revocation(
    say: Narrator,
    config: NetworkConfig,
    material: NetworkMaterial,
    ledger: Ledger,
    wallets: dict[str, Path],
    now: datetime,
) -> None:
    city = config.org(CITY)
    revoked, kept = participant(REVOKED), participant(KEPT)
    say.step(f"Revoking {revoked.label} and committing the new CRL in a config block")
    city_admin = Wallet(material.admin_wallets[CITY]).load()
    revocation = update.revoke(
        CAStore(material.ca_dirs[CITY]), city_admin, REVOKED, REVOCATION_REASON, now
    )
    serials = ", ".join(f"{serial:x}"[:12] for serial in revocation.serials)
    say.say(
        f"{city.ca.name} revoked {revoked.label} ({REVOCATION_REASON}): "
        f"{len(revocation.serials)} certificate(s) [{serials}]"
    )
    say.say(f"CRL #{revocation.crl_number} lists {revocation.revoked_count} certificate(s)")

    current = ledger.channel_config()
    admins = [city_admin, Wallet(material.admin_wallets[POLICE]).load()]
    tx = update.signed_update(update.with_crl(current, city.msp_id, revocation.crl), admins)
    say.say(
        f"config update: sequence {current.sequence} -> {tx.config.sequence}, "
        f"new CRL for {city.msp_id}, signed by "
        + " and ".join(f"{a.name}@{a.msp_id}" for a in admins)
    )
    orderer_node = _node(config.orderers, CITY)
    orderer = Wallet(material.node_wallet(orderer_node.name)).load()
    block = update.cut_block(ledger.height, ledger.head_hash, tx, orderer)
    say.say(
        f"block {block.number} cut and signed by {orderer_node.name} (hash {_short(block.hash())})"
    )

    signers = update.check_admins(current, tx, now)
    say.say(f"peer check: Admins policy satisfied by {len(signers)} admin signatures")
    signer = update.check_orderer(current, block, now)
    say.say(f"peer check: BlockValidation policy satisfied by {signer.name}'s signature")
    ledger.append_block(block.with_flags([TxValidationCode.VALID]))
    config_now = ledger.channel_config()
    if config_now.sequence != tx.config.sequence:
        raise DemoError(f"the ledger's config is at sequence {config_now.sequence} after block 1")
    say.say(
        f"committed block {block.number} (VALID): ledger height {ledger.height}, "
        f"channel config sequence {config_now.sequence}"
    )

    msps = MSPManager.from_channel_config(config_now)
    error = _expect_refusal(
        msps, city.msp_id, _cert(wallets, REVOKED), now, None, CertificateRevoked
    )
    say.refused(revoked.label, error)
    say.accepted(f"{kept.label} (still)", msps.validate(city.msp_id, _cert(wallets, KEPT), now))


def _step_reopen(say: Narrator, ledger: Ledger, path: Path) -> Ledger:
    say.step("Chain verified, ledger closed and reopened")
    report = ledger.verify_chain()
    say.say(
        f"verify_chain: {report.height} blocks, {report.transactions} transactions, "
        f"{report.files} block file(s), hash links and index agree"
    )
    height, head = ledger.height, ledger.head_hash
    ledger.close()
    reopened = Ledger.open(path)
    if (reopened.height, reopened.head_hash) != (height, head):
        reopened.close()
        raise DemoError(f"reopened ledger has height {reopened.height}, expected {height}")
    say.say(
        f"reopened: height {reopened.height} preserved, head {_short(head)}, "
        f"config sequence {reopened.channel_config().sequence}"
    )
    return reopened


def _where(say: Narrator, config: NetworkConfig, material: NetworkMaterial, ledger: Path) -> None:
    p = say.path
    say.out(f"Where everything is (under {p(config.nodes_dir)}):")
    rows = [
        ("CA directories", ", ".join(p(d) for d in material.ca_dirs.values())),
        ("admin wallets", p(config.nodes_dir / "wallets") + "/admin@<Org>"),
        ("participants", p(config.nodes_dir / "wallets") + f"/<name>@<Org> ({len(PARTICIPANTS)})"),
        ("node identities", p(config.nodes_dir) + "/<node>/wallet"),
        ("genesis block", p(material.genesis)),
        ("peer ledger", p(ledger)),
    ]
    for label, value in rows:
        say.out(f"  {label:<16} {value}")
    say.out("Inspect it:")
    say.out(f"  cctvchain ledger info --ledger {p(ledger)}")
    say.out(f"  cctvchain ledger block 1 --ledger {p(ledger)}")
    say.out(f"  cctvchain ca show --dir {p(material.ca_dirs[CITY])}")
