"""The offline appliance bundle: everything a Raspberry Pi needs to become a careeredge device with no
internet (`careeredge-cloud build-device-bundle`; docs/appliance.md)."""
