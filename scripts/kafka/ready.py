#!/usr/bin/env python3
"""Exit 0 when the Kafka broker at HOST:PORT answers a Metadata request listing itself.

The local stack's health check (scripts/kafka-node.sh). Written against the protocol with the
standard library alone because it runs before anything of the project is built, and a JVM
admin tool per probe would cost a second of CPU each on a machine that is starting a broker.
Metadata v4 (request header v1) is a version every Kafka 4.x broker serves; a KRaft broker
opens its client listener only once it is unfenced, and lists itself only then.
"""
import socket
import struct
import sys


def metadata_brokers(host: str, port: int, timeout: float) -> int:
    client = b"continuity-ready"
    # Header v1: api_key 3 (Metadata), api_version 4, correlation_id, client_id.
    header = struct.pack(">hhih", 3, 4, 1, len(client)) + client
    # Body v4: topics = null (all), allow_auto_topic_creation = false.
    body = struct.pack(">i?", -1, False)
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", read(s, 4))[0]
        response = read(s, size)
    correlation, _throttle, brokers = struct.unpack(">iii", response[:12])
    if correlation != 1:
        raise ValueError("unexpected correlation id")
    return brokers


def read(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: ready.py HOST PORT", file=sys.stderr)
        return 2
    try:
        return 0 if metadata_brokers(sys.argv[1], int(sys.argv[2]), 2.0) >= 1 else 1
    except (OSError, ValueError, struct.error):
        return 1


if __name__ == "__main__":
    sys.exit(main())
