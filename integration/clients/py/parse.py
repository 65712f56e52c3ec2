#!/usr/bin/env python3
"""What a Python BOLT 11 decoder, not tapgate's, makes of the invoice in tapgate's challenge.

The decoder is the PyPI package `bolt11` 2.2.0, pinned with hashes in requirements.txt beside
this file and installed into .venv by `bash .ci/setup-interop`; see ../README.md.

I/O CONTRACT (stable: integration/clients.rs and the gateway's end-to-end test rely on it)

stdin: ONE JSON object
    {"www_authenticate": "L402 macaroon=\"<b64>\", invoice=\"<bolt11>\""}
  (other keys are ignored). The scheme (first word) and the `invoice` auth-param are read
  here with a small RFC 7235 parser: `key=token` or `key="quoted"`, comma separated, any order.

stdout: ONE JSON object, exit 0, when the input was a JSON object:
    {"ok": true,
     "scheme": "L402",                 # the header's first word, as given
     "invoice": "<bolt11>",            # the `invoice` parameter
     "currency": "bcrt",               # the BOLT 11 currency prefix bolt11 read (bc, tb, tbs, bcrt)
     "network_prefix": "lnbcrt",       # "ln" + currency
     "payment_hash": "<hex>",
     "amount_msat": 1234000,           # null if the invoice names no amount
     "timestamp": 1700000000,          # unix seconds
     "expiry": 600,                    # seconds (bolt11's default 3600 when the `x` tag is absent)
     "description": "..." | null,
     "description_hash": "<hex>" | null,
     "payee": "<66 hex>",              # the `n` tag checked against the signature, or the key
                                       #   recovered from the signature
     "payment_secret": "<hex>" | null,
     "min_final_cltv_expiry": 80,
     "features": {"var_onion_optin": "required", ...},
     "strict_error": null | "<message>"}   # bolt11's validate(strict=True)
A refusal gives {"ok": false, "stage": "header" | "decode", "error": "<message>"}, exit 0:
  "header" when there is no `invoice` parameter, "decode" when bolt11 refuses the invoice
  (checksum, signature, a missing payment hash, secret or description, ...).
Exit 2, with a message on stderr, only if stdin is not a JSON object with a string
"www_authenticate".
"""

import json
import re
import sys

import bolt11

_PARAM = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*(,|$)')


def parse_challenge(value):
    """The scheme and the auth-params of one challenge: `Scheme k=v, k="v", ...`."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    params = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m:
            break
        key, val = m.group(1).lower(), m.group(2)
        if val.startswith('"'):
            val = re.sub(r"\\(.)", r"\1", val[1:-1])
        params.setdefault(key, val)
        pos = m.end()
    return scheme, params


def run(req):
    scheme, params = parse_challenge(req["www_authenticate"])
    invoice = params.get("invoice")
    if not invoice:
        return {"ok": False, "stage": "header", "error": "no invoice parameter in the challenge"}
    try:
        inv = bolt11.decode(invoice)
    except Exception as e:  # the library's own exception types, and whatever its parts raise
        return {"ok": False, "stage": "decode", "error": f"{type(e).__name__}: {e}"}
    try:
        inv.validate(strict=True)
        strict_error = None
    except Exception as e:
        strict_error = f"{type(e).__name__}: {e}"
    return {
        "ok": True,
        "scheme": scheme,
        "invoice": invoice,
        "currency": inv.currency,
        "network_prefix": "ln" + inv.currency,
        "payment_hash": inv.payment_hash,
        "amount_msat": int(inv.amount_msat) if inv.amount_msat is not None else None,
        "timestamp": inv.date,
        "expiry": inv.expiry,
        "description": inv.description,
        "description_hash": inv.description_hash,
        "payee": inv.payee,
        "payment_secret": inv.payment_secret,
        "min_final_cltv_expiry": inv.min_final_cltv_expiry,
        "features": inv.features.readable if inv.features else None,
        "strict_error": strict_error,
    }


def main():
    try:
        req = json.load(sys.stdin)
    except ValueError as e:
        print(f"stdin is not JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(req, dict) or not isinstance(req.get("www_authenticate"), str):
        print('stdin must be a JSON object with a string "www_authenticate"', file=sys.stderr)
        return 2
    print(json.dumps(run(req)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
