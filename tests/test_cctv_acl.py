"""The application ACL (the paper's Figure 14 as data in the channel configuration).

* ``acl.decide`` as a pure function: first match wins, default deny, alternatives,
  wildcards, conditions; unknown conditions never grant; the TOML loader's checks.
* Every shipped rule (configs/acl.toml), table-driven, in both directions through real
  endorsement, ordering and commit, and shown to be the rule that decides: with that
  rule taken out of the channel configuration, its case is decided otherwise.
* The rules change only through a configuration transaction signed by a majority of
  organisation admins; no contract transaction can write them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from cctv_helpers import (
    ACL_RULES,
    CITY,
    NORTH,
    SOUTH,
    World,
    b64,
    build_world,
    call,
    commit_config,
    config_tx,
    current_config,
    fingerprint,
    invoke,
    majority,
    make_segment,
    person,
    query,
    refuse,
    rule,
    set_acl,
)

from cctvchain.chaincode.cctv import CctvContract, acl
from cctvchain.chaincode.cctv.acl import AclConfigError, Subject, Target, decide
from cctvchain.client.transaction import ClientIdentity
from cctvchain.codec import CodecError
from cctvchain.crypto import Domain
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.network.acl_rules import parse_acl_rules
from cctvchain.ordering.orderer import BroadcastRefused
from cctvchain.tx.messages import (
    Endorsement,
    Envelope,
    ProposalResponsePayload,
    SerializedIdentity,
    TransactionPayload,
    endorsement_message,
)
from cctvchain.tx.rwset import KVWriteEntry, NamespaceRWSet, TxRWSet

# -- acl.decide, pure ------------------------------------------------------------------------

CRM_NORTH = Subject("3881", "CRM", CITY, NORTH)
OPERATOR = Subject("3690", "Operator", CITY, NORTH)
CAMERA_NORTH = Target("CCTV", "5859", CITY, NORTH)
CAMERA_SOUTH = Target("CCTV", "7000", CITY, SOUTH)


def test_first_matching_rule_wins() -> None:
    deny = rule("NoOperators", "Operator", "CREATE", "Approve", action="DENY")
    allow = rule("OperatorsApprove", "Operator", "CREATE", "Approve")
    denied = decide([deny, allow], OPERATOR, "CREATE", "Approve", "Approve", CAMERA_NORTH)
    assert (denied.allowed, denied.rule) == (False, "NoOperators")
    assert denied.reason == "rule NoOperators denies it"
    allowed = decide([allow, deny], OPERATOR, "CREATE", "Approve", "Approve", CAMERA_NORTH)
    assert (allowed.allowed, allowed.rule) == (True, "OperatorsApprove")
    assert allowed.reason == "rule OperatorsApprove allows it"


def test_no_matching_rule_is_a_default_deny_with_its_reason() -> None:
    decision = decide(
        [rule("Other", "CRS", "CREATE", "Approve")],
        CRM_NORTH,
        "CREATE",
        "Approve",
        "Approve",
        CAMERA_NORTH,
    )
    assert (decision.allowed, decision.rule) == (False, "")
    assert decision.reason == "no rule allows CRM 3881 to CREATE Approve via Approve (default deny)"
    assert not decide([], CRM_NORTH, "READ", "CCTV", "GetCamera", CAMERA_NORTH).allowed


@pytest.mark.parametrize(
    ("role", "operation", "resource", "transaction", "matches"),
    [
        ("CRM|CRS", "UPDATE", "CCTV", "Approve", True),
        ("CRS | CRM", "UPDATE", "CCTV", "Approve", True),
        ("CRS|Operator", "UPDATE", "CCTV", "Approve", False),
        ("ANY", "UPDATE", "CCTV", "Approve", True),
        ("CRM", "CREATE|UPDATE", "CCTV", "Approve", True),
        ("CRM", "ALL", "CCTV", "Approve", True),
        ("CRM", "CREATE|DELETE", "CCTV", "Approve", False),
        ("CRM", "UPDATE", "Approve|CCTV", "Approve", True),
        ("CRM", "UPDATE", "Approve|Reject", "Approve", False),
        ("CRM", "UPDATE", "*", "Approve", False),  # resources have no wildcard
        ("CRM", "UPDATE", "CCTV", "*", True),
        ("CRM", "UPDATE", "CCTV", "Reject|Approve", True),
        ("CRM", "UPDATE", "CCTV", "Reject", False),
        ("CRMS", "UPDATE", "CCTV", "Approve", False),  # alternatives are whole names
    ],
)
def test_alternatives_and_wildcards(
    role: str, operation: str, resource: str, transaction: str, matches: bool
) -> None:
    candidate = rule("R", role, operation, resource, transaction)
    decision = decide([candidate], CRM_NORTH, "UPDATE", "CCTV", "Approve", CAMERA_NORTH)
    assert decision.allowed is matches
    assert decision.rule == ("R" if matches else "")


@pytest.mark.parametrize(
    ("condition", "subject", "target", "holds"),
    [
        ("true", CRM_NORTH, CAMERA_SOUTH, True),
        ("same_control_room", CRM_NORTH, CAMERA_NORTH, True),
        ("same_control_room", CRM_NORTH, CAMERA_SOUTH, False),
        # Without a control room, there is nothing to be the same as.
        ("same_control_room", Subject("x", "CRM", CITY, ""), Target("CCTV", "y", CITY, ""), False),
        ("same_org", CRM_NORTH, Target("CCTV", "1", CITY, ""), True),
        ("same_org", CRM_NORTH, Target("CCTV", "1", "Police", NORTH), False),
        ("same_org", Subject("x", "CRM", "", ""), Target("CCTV", "y", "", ""), False),
        ("self", Subject("5859", "CRM", CITY, ""), CAMERA_NORTH, True),
        ("self", CRM_NORTH, CAMERA_NORTH, False),
        ("same_org || same_control_room", CRM_NORTH, Target("CCTV", "1", "Police", NORTH), True),
        ("self || same_org", CRM_NORTH, Target("CCTV", "1", "Police", SOUTH), False),
    ],
)
def test_conditions(condition: str, subject: Subject, target: Target, holds: bool) -> None:
    candidate = rule("R", "ANY", "ALL", "CCTV", condition=condition)
    assert decide([candidate], subject, "UPDATE", "CCTV", "Approve", target).allowed is holds


def test_an_unknown_condition_never_grants_and_never_decides() -> None:
    broken = rule("Broken", "ANY", "ALL", "CCTV", condition="always")
    half_broken = rule("HalfBroken", "ANY", "ALL", "CCTV", condition="true || always")
    deny_broken = rule("DenyBroken", "ANY", "ALL", "CCTV", condition="never", action="DENY")
    allow = rule("Allow", "CRM", "UPDATE", "CCTV")
    for rules in ([broken], [half_broken], [broken, half_broken]):
        decision = decide(rules, CRM_NORTH, "UPDATE", "CCTV", "Approve", CAMERA_NORTH)
        assert (decision.allowed, decision.rule) == (False, "")
    # Skipped, not fatal: a later valid rule still decides.
    decision = decide([deny_broken, allow], CRM_NORTH, "UPDATE", "CCTV", "Approve", CAMERA_NORTH)
    assert (decision.allowed, decision.rule) == (True, "Allow")
    with pytest.raises(AclConfigError, match="unknown condition"):
        acl.check_rules([allow, broken])
    acl.check_rules(list(ACL_RULES))


VALID_RULE = """
[[rule]]
name = "A"
description = "d"
role = "CRM"
operation = "READ"
resource = "CCTV"
transaction = "*"
condition = "true"
action = "ALLOW"
"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[rule", "not valid TOML"),
        ("x = 1", "no [[rule]] entries"),
        (VALID_RULE.replace('action = "ALLOW"', ""), "missing action"),
        (VALID_RULE + 'extra = "x"\n', "unknown extra"),
        (VALID_RULE + VALID_RULE, "rule names must be unique"),
        (VALID_RULE.replace('"ALLOW"', '"PERMIT"'), "action must be ALLOW or DENY"),
        (VALID_RULE.replace('"READ"', '"WRITE"'), "unknown operation"),
        (VALID_RULE.replace('"true"', '"p.isAdmin()"'), "unknown condition"),
        (VALID_RULE.replace('role = "CRM"', "role = 3"), "missing role"),
    ],
)
def test_the_rule_loader_refuses_bad_rules(text: str, problem: str) -> None:
    with pytest.raises(AclConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_acl_rules(text)
    assert parse_acl_rules(VALID_RULE)[0].name == "A"


# -- every shipped rule, both ways, through the network ---------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("acl"))
    try:
        yield built
    finally:
        built.net.close()


@dataclass
class Context:
    camera: str = ""
    tx: str = ""  # a CityCCTV transaction that is about no camera
    camera_identity: ClientIdentity | None = None
    other_camera: ClientIdentity | None = None
    las_north: ClientIdentity | None = None  # staff of another role seated in CR-North
    roomless: ClientIdentity | None = None  # an operator of no control room

    @staticmethod
    def _given(identity: ClientIdentity | None) -> ClientIdentity:
        assert identity is not None
        return identity

    def own(self) -> ClientIdentity:
        return self._given(self.camera_identity)

    def other(self) -> ClientIdentity:
        return self._given(self.other_camera)

    def las(self) -> ClientIdentity:
        return self._given(self.las_north)

    def no_room(self) -> ClientIdentity:
        return self._given(self.roomless)


Call = Callable[[World, Context], tuple[ClientIdentity, str, tuple[str, ...]]]


@dataclass(frozen=True)
class RuleCase:
    """``allowed``: a request the rules let through. ``refused``: requests they refuse
    with ``code`` and a message containing ``denial`` (which permission failed): one
    failing the rule's condition and, where the rule names roles, one of another role
    whose condition holds. ``decides`` names which case the rule itself decides: without
    the rule, that case comes out differently. ``companions``: rules granting the other
    half of Composer's two permissions; relaxed (any role, condition "true") while the
    refusals are checked, so that each refusal is this rule's own. ``hidden``: what the
    rule keeps out of a listing instead of refusing it."""

    setup: Callable[[World, str], Context]
    allowed: Call
    refused: tuple[Call, ...]
    decides: str = "allowed"
    code: str = "ACCESS_DENIED"
    denial: str = ""
    companions: tuple[str, ...] = ()
    hidden: Callable[[World, Context], None] | None = None


def pending(world: World, tag: str) -> Context:
    camera_id = f"T-{tag}"
    world.request_camera(camera_id)
    return Context(camera=camera_id)


def approved(world: World, tag: str) -> Context:
    camera_id = f"T-{tag}"
    return Context(camera=camera_id, camera_identity=world.approved_camera(camera_id))


def two_cameras(world: World, tag: str) -> Context:
    context = approved(world, tag)
    context.other_camera = world.approved_camera(f"T-{tag}-other")
    return context


def nothing(world: World, tag: str) -> Context:
    return Context(camera=f"T-{tag}")


def city_transaction(world: World, tag: str) -> Context:
    data = person(f"T-{tag}", "CRS", f"id-T-{tag}", NORTH)
    tx_id = invoke(world.net, world.city_admin, "AddParticipant", json.dumps(data)).event.tx_id
    assert tx_id is not None
    return Context(camera=f"T-{tag}", tx=tx_id)


def approve(who: str) -> Call:
    return lambda w, c: (getattr(w, who), "Approve", (c.camera, f"cam-{c.camera}"))


def reject(who: str) -> Call:
    return lambda w, c: (getattr(w, who), "Reject", (c.camera, "not up to the mark"))


def las_approves(w: World, c: Context) -> tuple[ClientIdentity, str, tuple[str, ...]]:
    return (c.las(), "Approve", (c.camera, f"cam-{c.camera}"))


def las_rejects(w: World, c: Context) -> tuple[ClientIdentity, str, tuple[str, ...]]:
    return (c.las(), "Reject", (c.camera, "not up to the mark"))


def segment_of(c: Context) -> str:
    return b64(make_segment(c.camera, 0, 1_767_225_000_000))


def gap_of(c: Context) -> tuple[str, ...]:
    return (c.camera, "1767225000000", "1767225004000", "-1", "source lost")


def new_camera_request(c: Context) -> tuple[str, ...]:
    return (json.dumps({"id": c.camera, "ipAddress": "10.9.9.9", "location": "L", "model": "M"}),)


def south_does_not_list(w: World, c: Context) -> None:
    assert c.camera not in [listed["id"] for listed in query(w.net, w.op_s, "ListCameras")]


APPROVE_CREATE = "may not CREATE Approve via Approve"
APPROVE_UPDATE = "may not UPDATE CCTV via Approve"
REJECT_CREATE = "may not CREATE Reject via Reject"
REJECT_UPDATE = "may not UPDATE CCTV via Reject"

TABLE: dict[str, RuleCase] = {
    "OperatorsNeverDecide": RuleCase(
        pending,
        allowed=approve("crm_n"),
        refused=(approve("op_n"), reject("op_n")),
        decides="refused",
    ),
    "NetworkAdminManagesParticipants": RuleCase(
        nothing,
        allowed=lambda w, c: (
            w.city_admin,
            "AddParticipant",
            (json.dumps(person(c.camera, "CRS", f"id-{c.camera}", NORTH)),),
        ),
        refused=(
            lambda w, c: (
                w.police_admin,
                "UpdateParticipant",
                (json.dumps({"id": "3690", "department": "x"}),),
            ),
            lambda w, c: (
                w.crm_n,
                "AddParticipant",
                (json.dumps(person(c.camera, "CRS", f"id-{c.camera}", NORTH)),),
            ),
        ),
    ),
    "ParticipantsReadTheirOrganisation": RuleCase(
        nothing,
        allowed=lambda w, c: (w.op_n, "GetParticipant", ("3881",)),
        refused=(lambda w, c: (w.po, "GetParticipant", ("3881",)),),
    ),
    "OperatorRequestsCamera": RuleCase(
        nothing,
        allowed=lambda w, c: (w.op_n, "RequestCamera", new_camera_request(c)),
        refused=(
            lambda w, c: (c.no_room(), "RequestCamera", new_camera_request(c)),
            lambda w, c: (w.crm_n, "RequestCamera", new_camera_request(c)),
        ),
    ),
    "CRSApproveApplication": RuleCase(
        pending,
        approve("crs_n"),
        (approve("crs_s"), las_approves),
        denial=APPROVE_CREATE,
        companions=("CRSAddApproval",),
    ),
    "CRSAddApproval": RuleCase(
        pending,
        approve("crs_n"),
        (approve("crs_s"), las_approves),
        denial=APPROVE_UPDATE,
        companions=("CRSApproveApplication",),
    ),
    "CRMApproveApplication": RuleCase(
        pending,
        approve("crm_n"),
        (approve("crm_s"), las_approves),
        denial=APPROVE_CREATE,
        companions=("CRMAddApproval",),
    ),
    "CRMAddApproval": RuleCase(
        pending,
        approve("crm_n"),
        (approve("crm_s"), las_approves),
        denial=APPROVE_UPDATE,
        companions=("CRMApproveApplication",),
    ),
    "CRMRejectApplication": RuleCase(
        pending,
        reject("crm_n"),
        (reject("crm_s"), las_rejects),
        denial=REJECT_CREATE,
        companions=("ControlRoomRecordsRejection",),
    ),
    "CRSRejectApplication": RuleCase(
        pending,
        reject("crs_n"),
        (reject("crs_s"), las_rejects),
        denial=REJECT_CREATE,
        companions=("ControlRoomRecordsRejection",),
    ),
    "ControlRoomRecordsRejection": RuleCase(
        pending,
        reject("crm_n"),
        (reject("crs_s"), las_rejects),
        denial=REJECT_UPDATE,
        companions=("CRMRejectApplication", "CRSRejectApplication"),
    ),
    "CRMDecommissions": RuleCase(
        approved,
        allowed=lambda w, c: (w.crm_n, "Decommission", (c.camera, "retired")),
        refused=(
            lambda w, c: (w.crm_s, "Decommission", (c.camera, "retired")),
            lambda w, c: (w.crs_n, "Decommission", (c.camera, "retired")),
        ),
    ),
    "ControlRoomRotatesCameraKeys": RuleCase(
        approved,
        allowed=lambda w, c: (w.crs_n, "RotateCameraKey", (c.camera, f"cam-{c.camera}-v2")),
        refused=(
            lambda w, c: (w.crm_s, "RotateCameraKey", (c.camera, f"cam-{c.camera}-v2")),
            lambda w, c: (c.las(), "RotateCameraKey", (c.camera, f"cam-{c.camera}-v2")),
        ),
    ),
    "ControlRoomListsItsCameras": RuleCase(
        pending,
        allowed=lambda w, c: (w.op_n, "ListCameras", ()),
        refused=(
            lambda w, c: (w.po, "ListCameras", ()),
            lambda w, c: (c.las(), "ListCameras", ()),
        ),
        hidden=south_does_not_list,
    ),
    "ControlRoomGrantsAccess": RuleCase(
        approved,
        allowed=lambda w, c: (w.crm_n, "GrantAccess", (c.camera, "role", "PO")),
        refused=(
            lambda w, c: (w.crm_s, "GrantAccess", (c.camera, "role", "PO")),
            lambda w, c: (c.las(), "GrantAccess", (c.camera, "role", "PO")),
        ),
    ),
    "CameraAnchorsItsOwnSegments": RuleCase(
        two_cameras,
        allowed=lambda w, c: (c.own(), "AnchorSegment", (segment_of(c),)),
        # Another camera, or a person, is refused before the ACL is asked: the contract
        # checks that the anchoring identity is the segment's own camera first.
        refused=(
            lambda w, c: (c.other(), "AnchorSegment", (segment_of(c),)),
            lambda w, c: (w.crm_n, "AnchorSegment", (segment_of(c),)),
        ),
        code="WRONG_IDENTITY",
    ),
    "CameraReportsItsOwnGaps": RuleCase(
        two_cameras,
        allowed=lambda w, c: (c.own(), "ReportGap", gap_of(c)),
        # As for anchors: only the camera's own identity, checked before the ACL.
        refused=(
            lambda w, c: (c.other(), "ReportGap", gap_of(c)),
            lambda w, c: (w.crm_n, "ReportGap", gap_of(c)),
        ),
        code="WRONG_IDENTITY",
    ),
    "ManagementReadsHistory": RuleCase(
        city_transaction,
        allowed=lambda w, c: (w.crm_n, "GetHistoryRecord", (c.tx,)),
        refused=(
            lambda w, c: (w.police_admin, "GetHistoryRecord", (c.tx,)),
            lambda w, c: (w.op_n, "GetHistoryRecord", (c.tx,)),
            lambda w, c: (w.op_n, "GetHistory", ("{}",)),
        ),
    ),
}

READ_ONLY = {name for name, info in CctvContract.functions().items() if info.read_only}


@pytest.fixture(scope="module")
def seated(world: World) -> tuple[ClientIdentity, ClientIdentity]:
    """A member of local-authority staff seated in CR-North, and an operator of no room."""
    net = world.net
    for data in (
        person("T-LAS", "LAS", "las-north", NORTH),
        person("T-OP", "Operator", "roomless"),
    ):
        invoke(net, world.city_admin, "AddParticipant", json.dumps(data))
    return net.client(CITY, "las-north", role="LAS"), net.client(CITY, "roomless", role="Operator")


def test_the_table_covers_every_shipped_rule() -> None:
    assert list(TABLE) == [r.name for r in ACL_RULES]


@pytest.mark.parametrize("name", list(TABLE))
def test_every_rule_both_ways_and_it_is_the_rule_that_decides(
    world: World, seated: tuple[ClientIdentity, ClientIdentity], name: str
) -> None:
    net = world.net
    case = TABLE[name]
    context = case.setup(world, name)
    context.las_north, context.roomless = seated
    rules = current_config(net).acl_rules
    assert rules == ACL_RULES
    (rule_under_test,) = [r for r in rules if r.name == name]
    allowed_client, allowed_function, allowed_args = case.allowed(world, context)
    refusals = [refused(world, context) for refused in case.refused]

    # Refused, through the endorsers: nothing reaches the ledger.
    if case.companions:
        relaxed = [
            replace(r, role="ANY", condition="true") if r.name in case.companions else r
            for r in rules
        ]
        set_acl(net, relaxed)
    try:
        for client, function, args in refusals:
            message = refuse(net, client, function, *args, code=case.code)
            assert case.denial in message
            if rule_under_test.action == "DENY":
                assert f"rule {name} denies it" in message
    finally:
        if case.companions:
            set_acl(net, rules)
    if case.hidden is not None:
        case.hidden(world, context)

    # The rule decides: take it out of the channel configuration (a config transaction
    # signed by a majority of admins) and its case comes out differently.
    set_acl(net, [r for r in rules if r.name != name])
    try:
        if case.decides == "allowed":
            without = refuse(
                net, allowed_client, allowed_function, *allowed_args, code="ACCESS_DENIED"
            )
            assert "default deny" in without
        else:
            client, function, args = refusals[0]
            without = refuse(net, client, function, *args, code="ACCESS_DENIED")
            assert "default deny" in without and name not in without
    finally:
        set_acl(net, rules)

    # Allowed: committed VALID (a query is answered).
    if allowed_function in READ_ONLY:
        assert query(net, allowed_client, allowed_function, *allowed_args) is not None
    else:
        invoke(net, allowed_client, allowed_function, *allowed_args)


# -- changing the rules ---------------------------------------------------------------------


def test_rules_change_only_by_a_config_transaction_signed_by_a_majority(world: World) -> None:
    net = world.net
    world.approved_camera("K-1")
    before = current_config(net)
    without_grants = tuple(r for r in before.acl_rules if r.name != "ControlRoomGrantsAccess")

    # One admin is not the channel's Admins policy: the orderer refuses the update.
    lone = config_tx(net, [net.orgs[CITY]], acl_rules=without_grants)
    state = fingerprint(net)
    with pytest.raises(BroadcastRefused, match="Admins policy") as refused:
        net.broadcast(lone.encode())
    assert refused.value.status == 403
    # Nor may an update skip or repeat a sequence number, even signed by everyone.
    everyone = list(net.orgs.values())
    for sequence in (before.sequence, before.sequence + 2):
        skipped = config_tx(net, everyone, acl_rules=without_grants)
        skipped = replace(skipped, config=replace(skipped.config, sequence=sequence))
        with pytest.raises(BroadcastRefused, match="sequence"):
            net.broadcast(skipped.encode())
    assert fingerprint(net) == state
    assert call(net, world.crm_n, "GrantAccess", "K-1", "role", "PO").status == 200

    # A majority: committed, and in force on every peer at once.
    update = config_tx(net, majority(net), acl_rules=without_grants)
    commit_config(net, update)
    assert current_config(net).sequence == before.sequence + 1
    message = refuse(net, world.crm_n, "GrantAccess", "K-1", "role", "PO", code="ACCESS_DENIED")
    assert "default deny" in message
    refuse(net, world.crs_n, "ListGrants", "K-1", code="ACCESS_DENIED")
    set_acl(net, before.acl_rules)
    invoke(net, world.crm_n, "GrantAccess", "K-1", "role", "PO")


def test_first_match_wins_in_the_channel_rules(world: World) -> None:
    net = world.net
    world.request_camera("K-2")
    rules = current_config(net).acl_rules
    operators_approve = [
        rule("OperatorsApprove", "Operator", "CREATE", "Approve", condition="same_control_room"),
        rule(
            "OperatorsAddApproval",
            "Operator",
            "UPDATE",
            "CCTV",
            "Approve",
            condition="same_control_room",
        ),
    ]
    try:
        # After the DENY rule: it still decides.
        set_acl(net, [*rules, *operators_approve])
        message = refuse(net, world.op_n, "Approve", "K-2", "cam-K-2", code="ACCESS_DENIED")
        assert "rule OperatorsNeverDecide denies it" in message
        # Before it: the operator's approval is allowed, and commits.
        set_acl(net, [*operators_approve, *rules])
        approved = invoke(net, world.op_n, "Approve", "K-2", "cam-K-2").result
        assert (approved["status"], approved["decidedBy"]) == ("APPROVED", "3690")
    finally:
        set_acl(net, rules)
    world.request_camera("K-3")
    refuse(net, world.op_n, "Approve", "K-3", "cam-K-3", code="ACCESS_DENIED")


def test_a_rule_with_an_unknown_condition_grants_nothing_on_the_channel(world: World) -> None:
    net = world.net
    world.request_camera("K-4")
    rules = current_config(net).acl_rules
    everything = [
        rule("Everyone", "ANY", "ALL", "Approve|CCTV|GrantAccess|AccessGrant", condition="always")
    ]
    try:
        set_acl(net, [*everything, *rules])
        message = refuse(net, world.po, "Approve", "K-4", "cam-K-4", code="ACCESS_DENIED")
        assert "default deny" in message
        # The other rules still work.
        invoke(net, world.crm_n, "Approve", "K-4", "cam-K-4")
    finally:
        set_acl(net, rules)


def test_no_contract_transaction_writes_the_rules(world: World) -> None:
    net = world.net
    world.approved_camera("K-5")
    # Every transaction committed on this channel so far: contract transactions read the
    # channel configuration (for the ACL) and write only their own namespace.
    config_reads = 0
    contract_txs = 0
    ledger = net.peers[0].ledger
    for block in ledger.iter_blocks(1):
        for index, data in enumerate(block.transactions):
            if block.metadata.tx_flags[index] != TxValidationCode.VALID:
                continue
            try:
                envelope = Envelope.decode(data)
            except CodecError:
                continue  # a configuration transaction
            contract_txs += 1
            for ns in envelope.response_payload.results.namespaces:
                assert ns.namespace in ("cctv", CONFIG_NAMESPACE)
                if ns.namespace == CONFIG_NAMESPACE:
                    assert ns.writes == () and ns.range_queries == ()
                    config_reads += 1
    assert contract_txs > 20 and config_reads == contract_txs

    # Even endorsers that sign a write of the rules cannot get it committed.
    rules_before = current_config(net)
    grab = replace(
        rules_before,
        acl_rules=(rule("AllowEverything", "ANY", "ALL", "CCTV|Approve"),),
    )
    signed = net.propose(world.crm_n, "cctv", "GrantAccess", ["K-5", "role", "PO"])
    responses = net.endorse(signed)
    honest = ProposalResponsePayload.decode(responses[0].payload)
    forged = replace(
        honest,
        results=TxRWSet(
            (
                *honest.results.namespaces,
                NamespaceRWSet(
                    CONFIG_NAMESPACE, (), (), (KVWriteEntry(CONFIG_KEY, False, grab.encode()),)
                ),
            )
        ),
    ).encode()
    endorsements = []
    for peer in net.endorsing_peers():
        endorser = SerializedIdentity(peer.identity.msp_id, peer.identity.cert_pem)
        message = endorsement_message(forged, endorser)
        endorsements.append(
            Endorsement(endorser, peer.identity.key.sign(Domain.PROPOSAL_RESPONSE, message))
        )
    payload = TransactionPayload(signed.proposal, forged, tuple(endorsements)).encode()
    envelope = Envelope(payload, world.crm_n.key.sign(Domain.ENVELOPE, payload))
    state = fingerprint(net)[3]
    net.broadcast(envelope.encode())
    net.cut()
    [event] = net.deliver()
    assert [(t.tx_id, t.code) for t in event.transactions] == [
        (envelope.tx_id, TxValidationCode.ILLEGAL_WRITESET)
    ]
    assert fingerprint(net)[3] == state
    for peer in net.peers:
        assert peer.ledger.channel_config() == rules_before
    # The same request, honestly endorsed, commits.
    invoke(net, world.crm_n, "GrantAccess", "K-5", "role", "PO")
