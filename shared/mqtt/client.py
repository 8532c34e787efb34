"""One way to build a paho MQTT v5 client, for the device agent and the cloud tools alike.

Every client: MQTT v5, a persistent session (clean_start=False + Session Expiry Interval, so QoS 1
messages queued while a client is away are delivered when it comes back), a Maximum Packet Size (the
broker drops anything bigger instead of making the client receive it), optional TLS (CA, client
certificate) and username/password, and paho's own reconnect loop with exponential backoff.

Plaintext: a password is refused over a connection without TLS unless `allow_plaintext_password`
says so (and then every connection logs a warning); without TLS at all, a client talking to
anything but loopback logs a warning that its traffic can be read and altered on the way.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shared.errors import UserError
from shared.mqtt.contract import MAX_PACKET_BYTES

DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600  # a week: fleets may be offline for days

log = logging.getLogger("careeredge.mqtt")


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    max_packet_bytes: int = MAX_PACKET_BYTES
    allow_plaintext_password: bool = False

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)

    @property
    def address(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def refuse_plaintext_password(settings: BrokerSettings) -> None:
    """UserError when the settings would send a password without TLS and that was not allowed."""
    if not settings.tls and settings.username and not settings.allow_plaintext_password:
        raise UserError(
            f"refusing to send the MQTT password for {settings.username!r} to {settings.address} without TLS "
            "(anyone on the path can read it): set a TLS CA ([sync] tls_ca / --tls-ca, port 8883), or allow "
            "it explicitly ([sync] allow_plaintext_password = true / --allow-plaintext-password)"
        )


def check_transport_security(settings: BrokerSettings) -> None:
    """Refuse a password over plaintext unless allowed; warn about plaintext that leaves the machine."""
    refuse_plaintext_password(settings)
    if settings.tls:
        return
    if settings.username:
        log.warning(
            "INSECURE: sending the MQTT password for %r to %s in plaintext (allowed by "
            "allow_plaintext_password); configure TLS",
            settings.username,
            settings.address,
        )
    elif not settings.loopback:
        log.warning(
            "INSECURE: MQTT to %s without TLS: predictions and model updates travel unencrypted and "
            "unauthenticated; configure a TLS CA (port 8883)",
            settings.address,
        )


def make_client(client_id: str, settings: BrokerSettings, *, manual_ack: bool = False) -> mqtt.Client:
    check_transport_security(settings)
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.tls:
        if bool(settings.tls_cert) != bool(settings.tls_key):
            raise UserError("TLS client authentication needs both tls_cert and tls_key")
        try:
            client.tls_set(
                ca_certs=settings.tls_ca,
                certfile=settings.tls_cert,
                keyfile=settings.tls_key,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"cannot load TLS files ({settings.tls_ca}, {settings.tls_cert}): {exc}") from None
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    client.reconnect_delay_set(min_delay=settings.reconnect_min_s, max_delay=settings.reconnect_max_s)
    return client


def connect_in_background(client: mqtt.Client, settings: BrokerSettings) -> None:
    """Start paho's network thread; it keeps (re)connecting with backoff until `client.disconnect()`."""
    properties = connect_properties(settings, settings.session_expiry_s)
    client.connect_async(
        settings.host, settings.port, keepalive=settings.keepalive_s, clean_start=False, properties=properties
    )
    client.loop_start()


def connect_properties(settings: BrokerSettings, session_expiry_s: int) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_s
    properties.MaximumPacketSize = settings.max_packet_bytes
    return properties


class AvailabilityLog:
    """Home Assistant's rule: log once when the broker goes away and once when it is back.

    paho retries every few seconds while the broker is down; logging each failed attempt would flood
    a Pi's journal during a days-long outage, so only the transitions are logged.
    """

    def __init__(self, logger: logging.Logger, address: str):
        self.logger = logger
        self.address = address
        self._lock = threading.Lock()
        self._available: bool | None = None  # unknown until the first connect attempt resolves

    def connected(self) -> None:
        with self._lock:
            was, self._available = self._available, True
        if was is False:
            self.logger.warning("MQTT broker %s is available again", self.address)
        elif was is None:
            self.logger.info("connected to MQTT broker %s", self.address)

    def disconnected(self, reason: object) -> None:
        with self._lock:
            was, self._available = self._available, False
        if was is not False:
            self.logger.warning("MQTT broker %s is unavailable (%s); will keep retrying", self.address, reason)

    @property
    def available(self) -> bool:
        return bool(self._available)
