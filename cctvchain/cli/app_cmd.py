"""``cctvchain participant|camera|access …``: the CCTV contract over the network.

Each command signs as the caller's wallet identity and goes through a peer's gateway:
submits are endorsed by the organisations the policy needs, ordered, and answered once
committed (with the validation code and block); queries run on one peer.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cctvchain.cli.errors import CliError
from cctvchain.cli.session import add_session_options, committed_line, open_session, print_answer

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parser(sub: SubParsers) -> None:
    _participant(sub)
    _camera(sub)
    _access(sub)


def _command(group: SubParsers, name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, description=help_text)
    add_session_options(parser)
    parser.set_defaults(func=func)
    return parser


# -- participants ------------------------------------------------------------------------


def _participant(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "participant",
        help="participants of the paper's Table 3 (NetworkAdmin only)",
        description="Add, update, remove and show participants bound to enrolled identities.",
    )
    group = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = _command(group, "add", "add a participant bound to an enrolled identity", _p_add)
    _participant_fields(add, required=True)
    update = _command(group, "update", "change a participant's fields", _p_update)
    _participant_fields(update, required=False)
    remove = _command(group, "remove", "remove a participant", _p_remove)
    remove.add_argument("id")
    show = _command(group, "show", "show a participant of your organisation", _p_show)
    show.add_argument("id")
    _command(group, "whoami", "how the contract sees you", _p_whoami)


def _participant_fields(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--id", required=True, help="participant id, e.g. 3690")
    parser.add_argument("--role", required=required, help="CRM, CRS, Operator, PO, PCRO or LAS")
    parser.add_argument("--identity", required=required, help="the enrolled identity's name")
    parser.add_argument("--name", dest="person_name", required=required)
    parser.add_argument("--person-id", required=required)
    parser.add_argument("--department", required=required)
    parser.add_argument("--age", type=int, required=required)
    parser.add_argument("--gender", required=required)
    parser.add_argument("--control-room", help="e.g. CR-North (control room staff)")


def _participant_json(args: argparse.Namespace) -> str:
    fields = {
        "id": args.id,
        "role": args.role,
        "identity": args.identity,
        "name": args.person_name,
        "personId": args.person_id,
        "department": args.department,
        "age": args.age,
        "gender": args.gender,
        "controlRoom": args.control_room,
    }
    return json.dumps({k: v for k, v in fields.items() if v is not None})


def _submit(args: argparse.Namespace, function: str, what: str, *call_args: str) -> int:
    result = open_session(args).submit(function, *call_args)
    answer = result.json()
    print_answer(
        args,
        {
            "tx_id": result.tx_id,
            "block": result.block,
            "code": result.validation_code_name,
            "result": answer,
        },
        [committed_line(result, what), *_summary(answer)],
    )
    return 0


def _query(args: argparse.Namespace, function: str, *call_args: str) -> int:
    answer = open_session(args).evaluate(function, *call_args)
    print_answer(args, answer, _summary(answer))
    return 0


def _summary(answer: Any) -> list[str]:
    if isinstance(answer, dict):
        return [f"  {key}: {value}" for key, value in sorted(answer.items()) if key != "segment"]
    if isinstance(answer, list):
        lines = []
        for item in answer:
            if isinstance(item, dict):
                lines.append(
                    "  " + ", ".join(f"{k}={v}" for k, v in sorted(item.items()) if k != "segment")
                )
            else:
                lines.append(f"  {item}")
        return lines or ["  (none)"]
    return [] if answer is None else [f"  {answer}"]


def _p_add(args: argparse.Namespace) -> int:
    return _submit(args, "AddParticipant", f"participant {args.id} added", _participant_json(args))


def _p_update(args: argparse.Namespace) -> int:
    return _submit(
        args, "UpdateParticipant", f"participant {args.id} updated", _participant_json(args)
    )


def _p_remove(args: argparse.Namespace) -> int:
    return _submit(args, "RemoveParticipant", f"participant {args.id} removed", args.id)


def _p_show(args: argparse.Namespace) -> int:
    return _query(args, "GetParticipant", args.id)


def _p_whoami(args: argparse.Namespace) -> int:
    return _query(args, "WhoAmI")


# -- cameras -------------------------------------------------------------------------------


def _camera(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "camera",
        help="camera lifecycle: request, approve, reject, decommission, show, list",
        description="Cameras as assets (the paper's Figure 8) and their approval (Figure 10).",
    )
    group = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    request = _command(group, "request", "an operator adds a device (PENDING)", _c_request)
    request.add_argument("--id", required=True)
    request.add_argument("--ip", required=True, help="the camera's IPv4 address")
    request.add_argument("--location", required=True)
    request.add_argument("--model", required=True)
    request.add_argument("--specs", default="")
    request.add_argument(
        "--policy", default="normal", help="sampling: normal (1/s), high:N (N/s) or all"
    )
    approve = _command(group, "approve", "approve and bind the camera's identity", _c_approve)
    approve.add_argument("id")
    approve.add_argument("--camera-identity", required=True, help="the camera's enrolled name")
    reject = _command(group, "reject", "reject a pending camera", _c_reject)
    reject.add_argument("id")
    reject.add_argument("--reason", required=True, help="the closeReason")
    retire = _command(group, "decommission", "retire an approved camera", _c_decommission)
    retire.add_argument("id")
    retire.add_argument("--reason", required=True)
    rotate = _command(group, "rotate-key", "bind a newly enrolled camera identity", _c_rotate)
    rotate.add_argument("id")
    rotate.add_argument("--camera-identity", required=True)
    show = _command(group, "show", "a camera's metadata (Algorithm 1 decides)", _c_show)
    show.add_argument("id")
    listing = _command(group, "list", "your control room's cameras", _c_list)
    listing.add_argument("--status", default="", help="PENDING, APPROVED, REJECTED, …")


def _policy(text: str) -> dict[str, Any]:
    if text in ("normal", "all"):
        return {"mode": text}
    mode, _, rate = text.partition(":")
    if mode == "high" and rate.isdigit():
        return {"mode": "high", "rate": int(rate)}
    raise CliError(f"--policy must be normal, high:N or all, not {text!r}", exit_code=2)


def _c_request(args: argparse.Namespace) -> int:
    camera = {
        "id": args.id,
        "ipAddress": args.ip,
        "location": args.location,
        "model": args.model,
        "specs": args.specs,
        "policy": _policy(args.policy),
    }
    return _submit(args, "RequestCamera", f"camera {args.id} requested", json.dumps(camera))


def _c_approve(args: argparse.Namespace) -> int:
    return _submit(args, "Approve", f"camera {args.id} approved", args.id, args.camera_identity)


def _c_reject(args: argparse.Namespace) -> int:
    return _submit(args, "Reject", f"camera {args.id} rejected", args.id, args.reason)


def _c_decommission(args: argparse.Namespace) -> int:
    return _submit(args, "Decommission", f"camera {args.id} decommissioned", args.id, args.reason)


def _c_rotate(args: argparse.Namespace) -> int:
    return _submit(
        args, "RotateCameraKey", f"camera {args.id} re-keyed", args.id, args.camera_identity
    )


def _c_show(args: argparse.Namespace) -> int:
    return _query(args, "GetCamera", args.id)


def _c_list(args: argparse.Namespace) -> int:
    return _query(args, "ListCameras", args.status)


# -- access ------------------------------------------------------------------------------


def _access(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "access",
        help="granted lists and Algorithm 1 decisions",
        description="Grant, revoke and check access to a camera's data (Algorithm 1).",
    )
    group = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    grant = _command(group, "grant", "put a user or a role on a camera's granted list", _a_grant)
    _grant_subject(grant)
    grant.add_argument("--expires", help="ISO-8601 time the grant ends (default: never)")
    revoke = _command(group, "revoke", "take a user or a role off the list", _a_revoke)
    _grant_subject(revoke)
    check = _command(group, "check", "may I access this camera? (Algorithm 1)", _a_check)
    check.add_argument("camera")
    check.add_argument(
        "--record", metavar="PURPOSE", help="record the decision on the ledger, with a purpose"
    )
    listing = _command(group, "list", "a camera's granted list", _a_list)
    listing.add_argument("camera")


def _grant_subject(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("camera")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--role", help="CRM, CRS, Operator, PO, PCRO or LAS")
    who.add_argument("--user", help="a participant id")


def _subject(args: argparse.Namespace) -> tuple[str, str]:
    return ("role", args.role) if args.role else ("user", args.user)


def _a_grant(args: argparse.Namespace) -> int:
    kind, subject = _subject(args)
    expires = "0"
    if args.expires:
        try:
            when = datetime.fromisoformat(args.expires)
        except ValueError:
            raise CliError(f"--expires must be an ISO-8601 time, not {args.expires!r}", 2) from None
        if when.tzinfo is None:
            raise CliError("--expires needs a time zone, e.g. 2026-12-01T18:00+00:00", 2)
        expires = str(int(when.timestamp() * 1000))
    return _submit(
        args,
        "GrantAccess",
        f"{kind} {subject} granted camera {args.camera}",
        args.camera,
        kind,
        subject,
        expires,
    )


def _a_revoke(args: argparse.Namespace) -> int:
    kind, subject = _subject(args)
    return _submit(
        args,
        "RevokeAccess",
        f"{kind} {subject} revoked from camera {args.camera}",
        args.camera,
        kind,
        subject,
    )


def _a_check(args: argparse.Namespace) -> int:
    session = open_session(args)
    if args.record:
        result = session.submit("RequestAccess", args.camera, args.record)
        answer = result.json()
        lines = [committed_line(result, "decision recorded")]
    else:
        answer = session.evaluate("CheckAccess", args.camera)
        lines = []
    lines.append(f"  {answer['decision'].upper()}: {answer['reason']}")
    print_answer(args, answer, lines)
    return 0 if answer["decision"] == "granted" else 3


def _a_list(args: argparse.Namespace) -> int:
    return _query(args, "ListGrants", args.camera)
