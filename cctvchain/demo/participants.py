"""The paper's participants (Table 3) and the camera, as the demo enrols them.

Each person is an identity enrolled at their organisation's CA (with the ``role``
attribute Algorithm 1 reads) and a participant record on the ledger added by their
organisation's admin; the camera is an identity of type ``camera`` that signs its own
anchors once the control room manager approves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CITY, POLICE, LOCAL_AUTHORITY = "CityCCTV", "Police", "LocalAuthority"
ORGANISATIONS: Final = (CITY, POLICE, LOCAL_AUTHORITY)
CONTROL_ROOM: Final = "CR-North"


@dataclass(frozen=True)
class Participant:
    name: str  # the enrolled identity
    org: str
    role: str
    title: str
    participant_id: str
    person: str
    department: str
    age: int
    gender: str
    control_room: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}@{self.org}"


PARTICIPANTS: Final = (
    Participant(
        "manager", CITY, "CRM", "control room manager", "3881", "Ann Walsh", "CCTV", 46,
        "female", CONTROL_ROOM,
    ),
    Participant(
        "supervisor", CITY, "CRS", "control room supervisor", "3882", "Sam Okafor", "CCTV",
        39, "male", CONTROL_ROOM,
    ),
    Participant(
        "operator", CITY, "Operator", "operator", "3690", "Veronica Diaz", "CCTV", 28,
        "female", CONTROL_ROOM,
    ),
    Participant(
        "officer", POLICE, "PO", "police officer", "P-77", "Bob Hughes", "CID", 35, "male"
    ),
    Participant(
        "pcro", POLICE, "PCRO", "police control-room operator", "P-81", "Priya Shah",
        "Control", 31, "female",
    ),
    Participant(
        "staff", LOCAL_AUTHORITY, "LAS", "local authority staff", "LA-12", "Tom Evans",
        "Licensing", 52, "male",
    ),
)  # fmt: skip


def participant(name: str) -> Participant:
    return next(p for p in PARTICIPANTS if p.name == name)


@dataclass(frozen=True)
class DemoCamera:
    camera_id: str
    identity: str  # enrolled with type camera at the city's CA
    ip: str
    location: str
    model: str


CAMERA: Final = DemoCamera(
    "5859", "cam-5859", "127.0.0.1", "Market Square, north corner", "GStreamer RTSP (demo)"
)
