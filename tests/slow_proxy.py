"""A throttling TCP relay, run as its own process: ``python slow_proxy.py LISTEN TARGET RATE``.

It stands between a client and a server on 127.0.0.1 (here: s3fs and the moto S3
server), passes the client's bytes on at ``RATE`` bytes per second (so an upload is
in flight long enough to be cut) and the server's answers at full speed. On stdout:
``ready`` once it listens, then ``up N TOTAL`` each time connection ``N`` has passed
another 256 KiB upstream. Killing the process (SIGKILL) cuts every connection at once,
as a server that dies does; started again on the same port, it serves again.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

STEP = 64 * 1024
REPORT = 256 * 1024


def pump(src: socket.socket, dst: socket.socket, rate: float | None, conn: int) -> None:
    sent = reported = 0
    try:
        while data := src.recv(STEP):
            dst.sendall(data)
            sent += len(data)
            if rate:
                time.sleep(len(data) / rate)
                if sent - reported >= REPORT:
                    reported = sent
                    print(f"up {conn} {sent}", flush=True)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main() -> None:
    listen, target, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the same port again right after a kill
    server.bind(("127.0.0.1", listen))
    server.listen(64)
    print("ready", flush=True)
    conn = 0
    while True:
        client, _ = server.accept()
        conn += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", target))
        except OSError:
            client.close()
            continue
        threading.Thread(target=pump, args=(client, upstream, rate, conn), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, None, conn), daemon=True).start()


if __name__ == "__main__":
    main()
