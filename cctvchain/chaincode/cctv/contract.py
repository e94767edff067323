"""The ``cctv`` contract: participants, cameras, access, anchors, gaps and the historian."""

from __future__ import annotations

from cctvchain.chaincode.cctv.anchors import AnchorFunctions
from cctvchain.chaincode.cctv.cameras import CameraFunctions
from cctvchain.chaincode.cctv.gaps import GapFunctions
from cctvchain.chaincode.cctv.grants import GrantFunctions
from cctvchain.chaincode.cctv.historian import HistorianFunctions
from cctvchain.chaincode.cctv.model import NAMESPACE
from cctvchain.chaincode.cctv.participants import ParticipantFunctions
from cctvchain.chaincode.contract import Contract


class CctvContract(
    ParticipantFunctions,
    CameraFunctions,
    GrantFunctions,
    AnchorFunctions,
    GapFunctions,
    HistorianFunctions,
    Contract,
):
    NAME = NAMESPACE
