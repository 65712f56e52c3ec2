#!/usr/bin/env python3
"""Holds N idle keep-alive HTTP/1.1 connections open to one server, for benches/load/run.sh.

Each connection sends one GET (with the Authorization header given, if any), reads the whole
response (Content-Length or chunked), and then stays open and idle. When every connection has
its response, it prints `ready N STATUS=COUNT ...` on stdout and idles until it is killed. A
connection the server closes meanwhile is reported on stderr.

usage: hold.py HOST PORT N [AUTHORIZATION]
"""

import resource
import select
import socket
import sys


def read_response(sock):
    """Reads one HTTP/1.1 response; returns its status code."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response headers")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip()
    if b"content-length" in headers:
        want = int(headers[b"content-length"])
        while len(body) < want:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside the body")
            body += chunk
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside the chunked body")
            body += chunk
    return status


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    auth = sys.argv[4] if len(sys.argv) == 5 else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
    req = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n"
    if auth:
        req += f"Authorization: {auth}\r\n"
    req = (req + "\r\n").encode()

    socks, statuses = [], {}
    for i in range(n):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(req)
        code = read_response(s)
        statuses[code] = statuses.get(code, 0) + 1
        socks.append(s)
    summary = " ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
    print(f"ready {len(socks)} {summary}", flush=True)

    # Idle until killed (SIGTERM); note any connection the server drops meanwhile.
    open_socks = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in open_socks:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        for fd, _ in poller.poll(1000):
            poller.unregister(fd)
            open_socks.pop(fd).close()
            print(f"hold.py: the server closed a connection ({len(open_socks)} still open)",
                  file=sys.stderr, flush=True)

if __name__ == "__main__":
    main()
