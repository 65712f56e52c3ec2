#!/usr/bin/env node
// tapgate's foreign interoperability harness for the npm package `macaroon`
// (go-macaroon/js-macaroon), pinned in package.json / package-lock.json.
//
// Reads ONE JSON array of operations from stdin and writes ONE JSON array of
// results (same order) to stdout. Run after `npm ci` in this directory:
//   node integration/interop/js/harness.js < ops.json
// See ../README.md for the contract.
'use strict';

const fs = require('fs');

// Work around a bug in macaroon 3.0.4's internal ByteBuffer (used by
// exportBinary): `_grow` tests `minCap <= this._capacity`, but `_capacity` is
// never assigned, so the buffer doubles on EVERY append (about 4 appends per
// caveat). From 4 first-party caveats on, exportBinary throws "Invalid typed
// array length". ByteBuffer is not exported, so supply the missing property
// as the class clearly intended (capacity = current buffer length) through a
// non-enumerable getter that only answers for ByteBuffer-shaped objects.
// Encoding output is unchanged; only the allocation size is fixed.
// Set TAPGATE_JS_NO_BYTEBUFFER_FIX=1 to observe the unpatched library.
if (!process.env.TAPGATE_JS_NO_BYTEBUFFER_FIX &&
    !Object.prototype.hasOwnProperty.call(Object.prototype, '_capacity')) {
  Object.defineProperty(Object.prototype, '_capacity', {
    configurable: true,
    enumerable: false,
    get() {
      return this && this._buf instanceof Uint8Array && typeof this._length === 'number'
        ? this._buf.length
        : undefined;
    },
  });
}

const macaroon = require('macaroon');

const hexToBytes = (req, name) => {
  const s = req[name];
  if (typeof s !== 'string') {
    throw new Error(`missing field "${name}"`);
  }
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new Error(`field "${name}" is not hex`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
};

const bytesToHex = bytes => Buffer.from(bytes).toString('hex');

const caveatList = (req, name) => {
  const cavs = req[name] === undefined || req[name] === null ? [] : req[name];
  if (!Array.isArray(cavs) || !cavs.every(c => typeof c === 'string')) {
    throw new Error(`field "${name}" must be an array of strings`);
  }
  return cavs;
};

// The library's own base64 decoder copes with std or URL-safe, padded or not
// (and validates the alphabet); importMacaroon then parses V2 binary (the
// library rejects V1 binary and trailing data).
const decode = req => {
  const s = req.macaroon_b64;
  if (typeof s !== 'string') {
    throw new Error('missing field "macaroon_b64"');
  }
  return macaroon.importMacaroon(macaroon.base64ToBytes(s));
};

const encodeV2 = m => ({
  ok: true,
  // exportBinary() keeps the version the macaroon was made or imported with,
  // which is always 2 here (V1 binary cannot be imported by this library).
  v2_b64: Buffer.from(m.exportBinary()).toString('base64'),
});

const fields = m => ({
  id_hex: bytesToHex(m.identifier),
  location: m.location || '',
  caveats: m.caveats.map(c => Buffer.from(c.identifier).toString('utf8')),
});

const ops = {
  mint(req) {
    const m = macaroon.newMacaroon({
      version: 2,
      rootKey: hexToBytes(req, 'root_key_hex'),
      identifier: hexToBytes(req, 'id_hex'),
      location: typeof req.location === 'string' ? req.location : '',
    });
    for (const c of caveatList(req, 'caveats')) {
      m.addFirstPartyCaveat(c);
    }
    return encodeV2(m);
  },

  attenuate(req) {
    const m = decode(req);
    for (const c of caveatList(req, 'caveats')) {
      m.addFirstPartyCaveat(c);
    }
    return encodeV2(m);
  },

  verify(req) {
    const m = decode(req);
    const rootKey = hexToBytes(req, 'root_key_hex');
    const allowed = new Set(caveatList(req, 'allowed_caveats'));
    const out = Object.assign({ok: true, valid: true, error: null}, fields(m));
    try {
      m.verify(rootKey, cond => (allowed.has(cond) ? null : 'caveat not allowed'), []);
    } catch (e) {
      out.valid = false;
      out.error = e && e.message !== undefined ? e.message : String(e);
    }
    return out;
  },

  decode(req) {
    const m = decode(req);
    return Object.assign({ok: true}, fields(m), {signature_hex: bytesToHex(m.signature)});
  },
};

const runOp = req => {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    return {ok: false, error: 'op is not a JSON object'};
  }
  const fn = Object.prototype.hasOwnProperty.call(ops, req.op) ? ops[req.op] : undefined;
  if (!fn) {
    return {ok: false, error: `unknown op ${JSON.stringify(req.op)}`};
  }
  try {
    return fn(req);
  } catch (e) {
    return {ok: false, error: e && e.message !== undefined ? e.message : String(e)};
  }
};

const main = () => {
  let reqs;
  try {
    reqs = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    process.stderr.write(`js-harness: request is not valid JSON: ${e.message}\n`);
    return 2;
  }
  if (!Array.isArray(reqs)) {
    process.stderr.write('js-harness: request is not a JSON array\n');
    return 2;
  }
  const results = reqs.map(runOp);
  process.stdout.write(JSON.stringify(results) + '\n');
  return 0;
};

process.exitCode = main();
