"""The paper's participants (Table 3) and one camera, as the demo enrolls them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cctvchain.msp.attributes import ROLE_ATTRIBUTE
from cctvchain.network.config import NetworkConfig
from cctvchain.network.material import enroll_identity

CITY, POLICE, LOCAL_AUTHORITY = "CityCCTV", "Police", "LocalAuthority"
ORGANISATIONS = (CITY, POLICE, LOCAL_AUTHORITY)


@dataclass(frozen=True)
class Participant:
    name: str
    org: str
    id_type: str
    role: str | None
    title: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.org}"

    @property
    def attributes(self) -> dict[str, str]:
        return {} if self.role is None else {ROLE_ATTRIBUTE: self.role}


PARTICIPANTS = (
    Participant("manager", CITY, "client", "CRM", "control room manager"),
    Participant("supervisor", CITY, "client", "CRS", "control room supervisor"),
    Participant("operator1", CITY, "client", "Operator", "operator"),
    Participant("operator2", CITY, "client", "Operator", "operator"),
    Participant("officer", POLICE, "client", "PO", "police officer"),
    Participant("pcro", POLICE, "client", "PCRO", "police control-room operator"),
    Participant("staff", LOCAL_AUTHORITY, "client", "LAS", "local authority staff"),
    Participant("camera-001", CITY, "camera", None, "camera (signs its own anchors)"),
)


def participant(name: str) -> Participant:
    return next(p for p in PARTICIPANTS if p.name == name)


def enroll(config: NetworkConfig, who: Participant, now: datetime) -> Path:
    return enroll_identity(config, who.org, who.name, who.id_type, who.attributes, now=now)
