"""The MQTT topic and message contract shared by the device sync agent and the cloud (see CONTRACT.md)."""

from shared.mqtt.contract import (  # noqa: F401  (the public surface of the contract)
    CONTRACT_VERSION,
    ContractError,
    Topics,
)
