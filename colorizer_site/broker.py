"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

Kombu writes a message file straight into the queue folder, so a worker polling at that instant
can take the file while it is still empty, fail to decode it and stop ("Unrecoverable error:
JSONDecodeError"). Here a message is written under a name no reader takes, then renamed into
place, which is atomic within one filesystem.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# Settings name it in the broker URL: "colorizer-files://".
SCHEME = "colorizer-files"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # Same name as kombu's (millisecond first, so folder order is delivery order).
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = path + ".part"  # readers take only names ending in ".<queue>.msg"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
