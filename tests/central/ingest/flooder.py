"""A flooding client for the flood test, run as its own process: publishes one payload at QoS 0 as fast as the
socket takes it, for at most ``seconds`` or ``count`` messages, then prints how many it sent.

    python flooder.py HOST PORT TOPIC PAYLOAD_FILE SECONDS COUNT
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    host, port, topic, payload_file, seconds, count = sys.argv[1:7]
    payload = Path(payload_file).read_bytes()
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"flood-{uuid.uuid4().hex[:8]}",
                         protocol=paho.MQTTv5)
    client.connect(host, int(port))
    client.loop_start()
    sent = 0
    deadline = time.monotonic() + float(seconds)
    try:
        while sent < int(count) and time.monotonic() < deadline:
            client.publish(topic, payload, qos=0).wait_for_publish(10)
            sent += 1
    finally:
        client.disconnect()
        client.loop_stop()
    print(sent, flush=True)


if __name__ == "__main__":
    main()
