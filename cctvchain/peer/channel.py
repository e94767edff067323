"""Everything a peer derives from the channel configuration in force.

Rebuilt whenever a configuration block commits; the validation cache is shared across
rebuilds so that certificates already checked are not re-verified after a CRL update
(the revocation check itself runs on every validation).
"""

from __future__ import annotations

from dataclasses import dataclass

from cctvchain.ledger.config import ChannelConfig
from cctvchain.msp.identity import MSPManager, ValidationCache
from cctvchain.policy import Policy, parse_policy

WRITERS = "Writers"
READERS = "Readers"
ADMINS = "Admins"
BLOCK_VALIDATION = "BlockValidation"


class ChannelConfigError(ValueError):
    """The channel configuration lacks a policy or has one that does not parse."""


@dataclass(frozen=True)
class ChannelContext:
    config: ChannelConfig
    msps: MSPManager
    policies: dict[str, Policy]
    endorsement_policies: dict[str, Policy]

    @classmethod
    def from_config(
        cls, config: ChannelConfig, cache: ValidationCache | None = None
    ) -> ChannelContext:
        policies = {name: _parse(name, text) for name, text in config.policies.items()}
        for required in (WRITERS, READERS, ADMINS, BLOCK_VALIDATION):
            if required not in policies:
                raise ChannelConfigError(f"channel {config.channel_id} has no {required} policy")
        endorsement = {
            contract: _parse(f"endorsement policy of {contract}", text)
            for contract, text in config.endorsement_policies.items()
        }
        return cls(
            config=config,
            msps=MSPManager.from_channel_config(config, cache=cache),
            policies=policies,
            endorsement_policies=endorsement,
        )

    @property
    def channel_id(self) -> str:
        return self.config.channel_id

    def policy(self, name: str) -> Policy:
        return self.policies[name]

    def endorsement_policy(self, contract: str) -> Policy | None:
        return self.endorsement_policies.get(contract)


def _parse(name: str, text: str) -> Policy:
    try:
        return parse_policy(text)
    except ValueError as exc:
        raise ChannelConfigError(f"{name}: {exc}") from exc
