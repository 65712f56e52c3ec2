#!/usr/bin/env python3
"""An L402 client's view of lnd's REST API: Python's standard library only, as a real client
would talk to lnd's `restlisten` (HTTPS verified against the node's tls.cert, hostname checked,
the macaroon hex-encoded in Grpc-Metadata-macaroon).

Usage: client.py NETWORK_TOML
       client.py NETWORK_TOML pay NODE PAYMENT_REQUEST

The second form only pays, printing each line of POST /v2/router/send as it arrives (the HTTP
status first), so a caller can act on the network while the payment is in flight.

Reads a network file (`tapgate simnet` or integration/regtest/up.sh), walks through the REST
calls an L402 client makes and prints one JSON object with every status and body, for
integration/rest.rs to assert on. It asserts nothing itself, so the same script can be pointed
at the real regtest network (whose nodes run without macaroons: the bad-macaroon case then
succeeds, and its result says so).
"""

import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import tomllib
import urllib.error
import urllib.request


def load(path):
    with open(path, "rb") as f:
        net = tomllib.load(f)
    return {n["name"]: n for n in net["nodes"]}


def macaroon_hex(path):
    with open(path, "rb") as f:
        return f.read().hex()


class Node:
    def __init__(self, entry, host="localhost"):
        self.entry = entry
        port = entry["rest_endpoint"].rsplit(":", 1)[1]
        self.base = f"https://{host}:{port}"
        # Verify the chain against the node's own certificate, and the hostname against it.
        self.ctx = ssl.create_default_context(cafile=entry["tls_cert_path"])
        assert self.ctx.check_hostname and self.ctx.verify_mode == ssl.CERT_REQUIRED

    def request(self, method, path, body=None, macaroon="lnd_macaroon_path", raw=None):
        headers = {}
        if macaroon is not None:
            value = macaroon if macaroon.startswith("hex:") else None
            headers["Grpc-Metadata-macaroon"] = (
                value[4:] if value else macaroon_hex(self.entry[macaroon])
            )
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            resp = urllib.request.urlopen(req, context=self.ctx, timeout=30)
        except urllib.error.HTTPError as e:
            return {
                "status": e.code,
                "body": json.loads(e.read() or b"null"),
                "www_authenticate": e.headers.get("WWW-Authenticate"),
                "content_type": e.headers.get("Content-Type"),
            }
        with resp:
            return {
                "status": resp.status,
                "body": json.loads(resp.read()),
                "content_type": resp.headers.get("Content-Type"),
            }

    def open_stream(self, path, body, macaroon="lnd_macaroon_path"):
        """Starts a server-streaming call; the response yields newline-delimited JSON."""
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Grpc-Metadata-macaroon": macaroon_hex(self.entry[macaroon]),
                "Content-Type": "application/json",
            },
        )
        return urllib.request.urlopen(req, context=self.ctx, timeout=60)

    def stream(self, path, body):
        """A whole server-streaming call, its lines read as they arrive."""
        try:
            resp = self.open_stream(path, body)
        except urllib.error.HTTPError as e:
            return {"status": e.code, "lines": [json.loads(l) for l in e.read().splitlines() if l]}
        with resp:
            lines = [json.loads(line) for line in resp if line.strip()]
        return {"status": resp.status, "lines": lines}


def pay_live(nodes, name, pay_req):
    body = {"payment_request": pay_req, "timeout_seconds": 60, "fee_limit_sat": "100"}
    with Node(nodes[name]).open_stream("/v2/router/send", body) as resp:
        print(json.dumps({"status": resp.status}), flush=True)
        for line in resp:
            if line.strip():
                print(json.dumps(json.loads(line)), flush=True)


def main():
    nodes = load(sys.argv[1])
    if sys.argv[2:3] == ["pay"]:
        pay_live(nodes, sys.argv[3], sys.argv[4])
        return
    alice, bob, merchant = (Node(nodes[n]) for n in ("alice", "bob", "merchant"))
    out = {}

    out["getinfo"] = {name: Node(nodes[name]).request("GET", "/v1/getinfo") for name in nodes}
    # The certificate also names 127.0.0.1 (an IP SAN, as lnd's does).
    out["getinfo_by_ip"] = Node(nodes["alice"], host="127.0.0.1").request("GET", "/v1/getinfo")
    out["balance"] = {n.entry["name"]: n.request("GET", "/v1/balance/channels") for n in (alice, bob)}

    # The merchant creates an invoice with the invoice macaroon; int64 sent as a string.
    created = merchant.request(
        "POST",
        "/v1/invoices",
        {"memo": "rest", "value": "2000", "expiry": 600},
        macaroon="lnd_invoice_macaroon_path",
    )
    out["add_invoice"] = created
    r_hash_b64 = created["body"]["r_hash"]
    r_hash = base64.b64decode(r_hash_b64, validate=True)
    pay_req = created["body"]["payment_request"]
    out["lookup_open"] = merchant.request(
        "GET", "/v1/invoice/" + r_hash.hex(), macaroon="lnd_invoice_macaroon_path"
    )
    out["decode"] = bob.request("GET", "/v1/payreq/" + pay_req)

    # bob pays it (he has the sats channel); lowerCamel and int64-as-number accepted too.
    paid = bob.stream(
        "/v2/router/send",
        {"payment_request": pay_req, "timeoutSeconds": 60, "fee_limit_sat": 100},
    )
    out["send"] = paid
    final = paid["lines"][-1].get("result", {}) if paid["lines"] else {}
    preimage = bytes.fromhex(final.get("payment_preimage", ""))
    out["preimage_hashes_to_r_hash"] = hashlib.sha256(preimage).digest() == r_hash
    out["lookup_settled"] = merchant.request(
        "GET", "/v1/invoice/" + r_hash.hex(), macaroon="lnd_readonly_macaroon_path"
    )

    # alice has only an asset channel: a sats payment ends FAILED with a failure_reason.
    second = merchant.request(
        "POST", "/v1/invoices", {"memo": "rest 2", "value": 1000}, macaroon="lnd_invoice_macaroon_path"
    )
    out["send_failed"] = alice.stream(
        "/v2/router/send",
        {"payment_request": second["body"]["payment_request"], "timeout_seconds": 60, "fee_limit_sat": "100"},
    )

    # Errors, in grpc-gateway's shape.
    out["bad_macaroon"] = alice.request("GET", "/v1/getinfo", macaroon="hex:" + "00" * 40)
    out["no_macaroon"] = alice.request("GET", "/v1/getinfo", macaroon=None)
    out["other_nodes_macaroon"] = alice.request(
        "GET", "/v1/getinfo", macaroon="hex:" + macaroon_hex(nodes["merchant"]["lnd_macaroon_path"])
    )
    out["unknown_invoice"] = merchant.request("GET", "/v1/invoice/" + os.urandom(32).hex())
    out["bad_hash"] = merchant.request("GET", "/v1/invoice/xyz")
    out["bad_body"] = merchant.request("POST", "/v1/invoices", raw=b'{"value": "ten"}')
    out["not_json"] = merchant.request("POST", "/v1/invoices", raw=b"{oops")
    out["unknown_path"] = merchant.request("GET", "/v1/nothing")
    out["wrong_method"] = merchant.request("POST", "/v1/getinfo", raw=b"{}")
    out["send_refused"] = bob.stream("/v2/router/send", {"payment_request": "lnbcrt1garbage", "timeout_seconds": 60})

    # Hostname verification is on: a name the certificate does not carry is refused.
    port = int(nodes["alice"]["rest_endpoint"].rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            with alice.ctx.wrap_socket(sock, server_hostname="not-the-node.example"):
                out["wrong_hostname"] = "accepted"
    except ssl.SSLCertVerificationError as e:
        out["wrong_hostname"] = e.verify_message

    print(json.dumps(out))


if __name__ == "__main__":
    main()
