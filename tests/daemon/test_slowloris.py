"""Slowloris: hundreds of half-sent requests must not lock everyone else out (waitress used to accept
100 connections and keep an idle one for 120 s, so 101 stalled clients took the page and /healthz down)."""

from __future__ import annotations

import socket
import time

import requests

STALLED = 300


def test_healthz_answers_while_hundreds_of_requests_stall_half_sent(daemon_factory, tiny_bundle):
    daemon = daemon_factory(tiny_bundle)
    host, port = daemon.url.split("//")[1].rstrip("/").split(":")
    stalled = []
    try:
        for i in range(STALLED):
            sock = socket.create_connection((host, int(port)), timeout=5)
            half = (
                b"GET /history HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # headers never finished
                if i % 2
                else b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"  # a body that never arrives
            )
            sock.sendall(half)
            stalled.append(sock)
        began = time.monotonic()
        health = requests.get(daemon.url + "healthz", timeout=5)
        assert health.status_code == 200 and time.monotonic() - began < 5
        answer = requests.post(daemon.url + "api/v1/predict", json={"text": "Data scientist: pandas, SQL"}, timeout=5)
        assert answer.status_code == 200
    finally:
        for sock in stalled:
            sock.close()
