"""The CCTV application contract (paper §3.1.4, §3.3, §4; PRODUCT §2-3)."""

from cctvchain.chaincode.cctv.contract import CctvContract

__all__ = ["CctvContract"]
