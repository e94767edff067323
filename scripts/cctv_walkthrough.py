"""The CCTV contract end to end, in one process with real components.

Three organisations' CAs enroll the people of the paper's Table 3 and a camera; their
NetworkAdmins add them as participants; an operator requests the camera, the control
room manager approves it (binding the camera's own identity), grants police officers
access; the camera anchors two chained segments; a police officer reads the anchors;
the historian lists what happened. Every step is a real proposal, endorsed by peers of
two organisations, ordered into a signed block and committed to LevelDB ledgers.

    .venv/bin/python scripts/cctv_walkthrough.py [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cctvchain.chaincode.cctv import CctvContract
from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.client.transaction import ClientIdentity, EndorsementError
from cctvchain.crypto import sha256
from cctvchain.inprocess.network import InProcessNetwork
from cctvchain.network.acl_rules import load_acl_rules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where the ledgers go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.dir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        with InProcessNetwork(root, {"cctv": CctvContract()}, acl_rules=load_acl_rules()) as net:
            walk(net)
    return 0


def walk(net: InProcessNetwork) -> None:
    def submit(who: ClientIdentity, function: str, *args: str) -> str:
        event = net.submit(who, "cctv", function, list(args))
        print(f"  {function:<16} by {who.name:<10} -> {event.code_name} (block {event.block})")
        return event.code_name

    print("1. Enroll identities at each organisation's CA (certificates carry the role)")
    city_admin = net.client("CityCCTV", "city-admin", "admin")
    police_admin = net.client("Police", "police-admin", "admin")
    manager = net.client("CityCCTV", "manager", role="CRM")
    operator = net.client("CityCCTV", "operator", role="Operator")
    officer = net.client("Police", "officer", role="PO")
    camera = net.client("CityCCTV", "cam-5859", "camera")

    print("2. NetworkAdmins add participants (Figure 9), bound to those identities")
    people = [
        (city_admin, {"id": "3881", "role": "CRM", "identity": "manager", "name": "Ann"}),
        (
            city_admin,
            {"id": "3690", "role": "Operator", "identity": "operator", "name": "veronica"},
        ),
        (police_admin, {"id": "P-77", "role": "PO", "identity": "officer", "name": "Bob"}),
    ]
    for admin, person in people:
        person |= {
            "personId": f"pid-{person['id']}",
            "department": "Head",
            "age": 40,
            "gender": "female",
            "controlRoom": "CR-North" if admin is city_admin else "",
        }
        submit(admin, "AddParticipant", json.dumps(person))

    print("3. The operator requests a camera; the manager approves it (Figure 10)")
    request = {
        "id": "5859",
        "ipAddress": "10.20.0.7",
        "location": "Main St / 5th Ave",
        "model": "Axis P1448-LE",
        "policy": "normal",
    }
    submit(operator, "RequestCamera", json.dumps(request))
    try:
        net.submit(operator, "cctv", "Approve", ["5859", "cam-5859"])
    except EndorsementError as refused:
        print(f"  Approve by operator refused: {str(refused).split(': ', 1)[1]}")
    submit(manager, "Approve", "5859", "cam-5859")

    print("4. Algorithm 1: the officer has no access until the manager grants role PO")
    check = net.evaluate(officer, "cctv", "CheckAccess", ["5859"])
    print(f"  CheckAccess: {json.loads(check.payload)['reason']}")
    submit(manager, "GrantAccess", "5859", "role", "PO")
    check = net.evaluate(officer, "cctv", "CheckAccess", ["5859"])
    print(f"  CheckAccess: {json.loads(check.payload)['reason']}")

    print("5. The camera's own identity anchors two chained segments")
    previous = bytes(32)
    end = net.clock.now_ms
    for sequence in range(2):
        start = end - 20_000 + sequence * 10_000
        segment = Segment(
            "5859",
            sequence,
            start,
            start + 9_960,
            250,
            sha256(f"frames {sequence}".encode()),
            previous,
            SamplingPolicy("normal", 1),
        )
        submit(camera, "AnchorSegment", base64.b64encode(segment.encode()).decode())
        previous = segment.hash()
    replay = net.evaluate(
        camera, "cctv", "AnchorSegment", [base64.b64encode(segment.encode()).decode()]
    )
    print(f"  replaying segment 1 is refused: {replay.message}")

    print("6. The officer reads the anchors, with their ledger positions")
    anchors = json.loads(
        net.evaluate(officer, "cctv", "GetAnchors", ["5859", "0", str(end)]).payload
    )
    for anchor in anchors:
        print(
            f"  segment {anchor['sequence']}: root {anchor['merkleRoot'][:16]}… "
            f"block {anchor['block']} tx {anchor['tx']}"
        )

    print("7. The historian (Figures 12-13): CityCCTV's transactions")
    history = json.loads(net.evaluate(manager, "cctv", "GetHistory", ["{}"]).payload)
    for record in history:
        when = datetime.fromtimestamp(record["timestamp"] / 1000, tz=UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        print(
            f"  {when}  {record['entryType']:<16} {record['participant']:<24}"
            f" event {record['eventId'][:12]}"
        )
    print(
        f"all {len(net.peers)} peers agree on head {net.peers[0].ledger.head_hash.hex()[:16]}: "
        f"{len(net.head_hashes()) == 1}"
    )


if __name__ == "__main__":
    sys.exit(main())
