"""The embedded broker (colorizer_site/broker.py) under a publisher and a consumer at once."""

import threading
import uuid

from kombu import Connection

import colorizer_site.broker  # noqa: F401  registers the URL scheme

MESSAGES = 2000


def exchange_messages(url, folder):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(folder)}
    # Kombu remembers declared exchanges per process, not per folder: a fresh name each time.
    name = f"photos-{uuid.uuid4()}"
    received = []
    with Connection(url, transport_options={**options, "polling_interval": 0}) as connection:
        queue = connection.SimpleQueue(name)

        def publish():
            with Connection(url, transport_options=options) as publisher:
                outgoing = publisher.SimpleQueue(name)
                for number in range(MESSAGES):
                    outgoing.put({"number": number})

        publisher = threading.Thread(target=publish)
        publisher.start()
        while len(received) < MESSAGES:
            message = queue.get(timeout=30)
            received.append(message.payload["number"])
            message.ack()
        publisher.join()
    return received


def test_a_message_is_never_taken_half_written(tmp_path):
    assert sorted(exchange_messages("colorizer-files://", tmp_path)) == list(range(MESSAGES))
