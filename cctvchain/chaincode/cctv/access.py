"""Algorithm 1 of the paper: may ``user`` access the data of camera ``cctv_i``?

    if message(cctv_i) exists & query(cctv_i) is valid then
        if cctv_i is registered in the granted list then
            if role = access (the user's role, or the user, holds access) then granted
            else denied
        else denied
    else denied

Every branch has its own reason so that a denial tells the caller exactly why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cctvchain.chaincode.cctv.model import AccessGrant, Camera, Participant

_CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")

GRANTED = "granted"
DENIED = "denied"


@dataclass(frozen=True)
class AccessDecision:
    granted: bool
    reason: str
    branch: str  # which test of Algorithm 1 decided

    @property
    def decision(self) -> str:
        return GRANTED if self.granted else DENIED


def is_valid_camera_id(camera_id: str) -> bool:
    return bool(_CAMERA_ID.fullmatch(camera_id))


def access(
    user: Participant | None,
    camera_id: str,
    camera: Camera | None,
    grants: Sequence[AccessGrant],
    now_ms: int,
) -> AccessDecision:
    """Algorithm 1, branch by branch. ``grants`` is the camera's granted list."""
    if user is None:
        return AccessDecision(False, "the requester is not a registered participant", "query")
    if not is_valid_camera_id(camera_id):
        return AccessDecision(False, f"{camera_id!r} is not a valid camera id", "query")
    if camera is None:
        return AccessDecision(False, f"camera {camera_id} does not exist", "exists")
    active = [g for g in grants if g.expires_ms == 0 or g.expires_ms > now_ms]
    if not active:
        expired = " (all grants have expired)" if grants else ""
        return AccessDecision(
            False, f"camera {camera_id} is not on the granted list{expired}", "granted_list"
        )
    for grant in active:
        if grant.subject_kind == "user" and grant.subject == user.id:
            return AccessDecision(True, f"user {user.id} holds access to {camera_id}", "role")
        if grant.subject_kind == "role" and grant.subject == user.role:
            return AccessDecision(True, f"role {user.role} holds access to {camera_id}", "role")
    return AccessDecision(
        False,
        f"neither user {user.id} nor role {user.role} holds access to camera {camera_id}",
        "role",
    )
