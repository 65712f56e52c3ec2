#!/usr/bin/env python3
"""tapgate's foreign interoperability harness for pymacaroons (PyPI).

Reads ONE JSON array of operations from stdin and writes ONE JSON array of
results (same order) to stdout. Run it with the venv that .ci/setup-interop
creates:  .venv/bin/python integration/interop/py/harness.py < ops.json
See ../README.md for the contract.
"""

import base64
import binascii
import json
import sys

from pymacaroons import MACAROON_V2, Macaroon, Verifier
from pymacaroons.serializers.binary_serializer import BinarySerializer
from pymacaroons.utils import create_initial_signature


def _hex(req, name):
    if name not in req or not isinstance(req[name], str):
        raise ValueError("missing field %r" % name)
    try:
        return binascii.unhexlify(req[name])
    except (binascii.Error, ValueError) as e:
        raise ValueError("field %r is not hex: %s" % (name, e))


def _caveat_list(req, name):
    cavs = req.get(name) or []
    if not isinstance(cavs, list) or not all(isinstance(c, str) for c in cavs):
        raise ValueError("field %r must be an array of strings" % name)
    return cavs


def _b64decode(s):
    """Std or URL-safe base64, padded or not, strictly validated."""
    if not isinstance(s, str):
        raise ValueError("missing field 'macaroon_b64'")
    s = s.replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    return base64.b64decode(s, validate=True)


def _decode(req):
    raw = _b64decode(req.get("macaroon_b64"))
    if not raw:
        raise ValueError("empty macaroon")
    # The library's binary deserializer (V2, or V1 if the first byte is
    # ASCII hex). Its own base64 step (Macaroon.deserialize) is bypassed so
    # padding/alphabet handling is the same in every harness.
    return BinarySerializer().deserialize_raw(raw)


def _text(b):
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")


def _encode_v2(m):
    if m.version != MACAROON_V2:
        # A V1 macaroon accepted on decode is re-encoded as V2; the format
        # does not enter the signature.
        m._version = MACAROON_V2
        for c in m.caveats:
            c._version = MACAROON_V2
    raw = BinarySerializer().serialize_raw(m)
    return {"ok": True, "v2_b64": base64.b64encode(raw).decode("ascii")}


def _fields(m):
    return {
        "id_hex": binascii.hexlify(m.identifier_bytes).decode("ascii"),
        "location": _text(m.location or ""),
        "caveats": [_text(c.caveat_id_bytes) for c in m.caveats],
    }


def op_mint(req):
    key = _hex(req, "root_key_hex")
    ident = _hex(req, "id_hex")
    loc = req.get("location") or ""
    m = Macaroon(location=loc, identifier=ident, key=key, version=MACAROON_V2)
    if not key:
        # Quirk: Macaroon() only signs when `key` is truthy, so an empty root
        # key would leave the signature empty. Use the library's own initial
        # signature function (HMAC key derivation included) instead.
        m.signature = create_initial_signature(key, m.identifier_bytes)
    for c in _caveat_list(req, "caveats"):
        m.add_first_party_caveat(c)
    return _encode_v2(m)


def op_attenuate(req):
    m = _decode(req)
    for c in _caveat_list(req, "caveats"):
        m.add_first_party_caveat(c)
    return _encode_v2(m)


def op_verify(req):
    m = _decode(req)
    key = _hex(req, "root_key_hex")
    allowed = _caveat_list(req, "allowed_caveats")
    out = {"ok": True, "valid": True, "error": None}
    out.update(_fields(m))
    v = Verifier()
    for c in allowed:
        v.satisfy_exact(c)
    try:
        if not v.verify(m, key):
            out["valid"] = False
            out["error"] = "verify returned False"
    except Exception as e:  # the library's own verification failure
        out["valid"] = False
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def op_decode(req):
    m = _decode(req)
    out = {"ok": True}
    out.update(_fields(m))
    out["signature_hex"] = _text(m.signature)
    return out


OPS = {
    "mint": op_mint,
    "attenuate": op_attenuate,
    "verify": op_verify,
    "decode": op_decode,
}


def run_op(req):
    if not isinstance(req, dict):
        return {"ok": False, "error": "op is not a JSON object"}
    fn = OPS.get(req.get("op"))
    if fn is None:
        return {"ok": False, "error": "unknown op %r" % (req.get("op"),)}
    try:
        return fn(req)
    except Exception as e:
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}


def main():
    try:
        ops = json.loads(sys.stdin.buffer.read())
    except ValueError as e:
        sys.stderr.write("py-harness: request is not valid JSON: %s\n" % e)
        return 2
    if not isinstance(ops, list):
        sys.stderr.write("py-harness: request is not a JSON array\n")
        return 2
    results = [run_op(op) for op in ops]
    sys.stdout.write(json.dumps(results, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
