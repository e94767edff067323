"""What a camera's own extractor may read, and participant input the contract refuses."""

from __future__ import annotations

import json
from pathlib import Path

from cctv_helpers import Chain, b64, build_world, call, invoke, person, query


def test_a_camera_reads_its_own_chain_head_and_no_other(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    net = world.net
    cam_a = world.approved_camera("H-1")
    cam_b = world.approved_camera("H-2")
    assert query(net, cam_a, "GetAnchorHead", "H-1")["sequence"] == -1
    chain = Chain("H-1", net.clock.now_ms - 20_000)
    segment = chain.next()
    invoke(net, cam_a, "AnchorSegment", b64(segment))
    head = query(net, cam_a, "GetAnchorHead", "H-1")
    assert head["sequence"] == 0 and head["segmentHash"] == segment.hash().hex()
    # Another camera is camera data like any other: Algorithm 1 (no grant) refuses it.
    refused = call(net, cam_b, "GetAnchorHead", "H-1")
    assert refused.status == 403 and refused.message.startswith("ACCESS_DENIED")
    # A camera reading its head does not open its anchors to it.
    assert call(net, cam_a, "GetAnchors", "H-1", "0", str(net.clock.now_ms)).status == 403


def test_control_room_must_be_text(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    data = person("X-1", "Operator", "x-op") | {"controlRoom": 7}
    world.net.client("CityCCTV", "x-op", role="Operator")
    refused = call(world.net, world.city_admin, "AddParticipant", json.dumps(data))
    assert refused.status == 400
    assert refused.message == "BAD_ARGUMENT: field 'controlRoom' must be str"
