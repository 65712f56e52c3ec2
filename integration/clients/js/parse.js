#!/usr/bin/env node
// What lsat-js, an L402 client that is not tapgate's, makes of tapgate's challenge.
// lsat-js 2.0.6 is pinned in package.json / package-lock.json (installed by
// `bash .ci/setup-interop`, `npm ci` in this directory); see ../README.md.
//
// I/O CONTRACT (stable: integration/clients.rs and the gateway's end-to-end test rely on it)
//
// stdin: ONE JSON object
//   {
//     "www_authenticate": "L402 macaroon=\"<b64>\", invoice=\"<bolt11>\"",  // required
//     "preimage": "<64 hex>",       // optional: the invoice's preimage, once paid
//     "authorization": "<value>"    // optional: an Authorization value for lsat-js to parse
//   }
// stdout: ONE JSON object, exit 0, when the input was a JSON object:
//   { "ok": true,
//     "scheme": "L402",                  // the header's first word, as given
//     "payment_hash": "<hex>",           // Lsat#paymentHash (lsat-js takes it from the invoice)
//     "invoice": "<bolt11>",             // Lsat#invoice
//     "invoice_amount_sat": 1234,        // Lsat#invoiceAmount (whole sats; 0 if the invoice
//                                        //   has none or its msat are not whole sats)
//     "invoice_amount_msat": "1234000",  // lsat-js's bolt11 decode, millisatoshis (a string),
//                                        //   or null for an invoice without an amount
//     "identifier": { "version": 0, "payment_hash": "<hex>", "token_id": "<hex>" },
//                                        // lsat-js's Identifier read from the macaroon
//     "macaroon": { "location": "...", "identifier_hex": "<hex>", "signature_hex": "<hex>" },
//     "caveats": [ { "condition": "services", "comp": "=", "value": "svc:0", "encoded": "services=svc:0" } ],
//                                        // Lsat#getCaveats(), in order
//     "valid_until": 0,                  // Lsat#validUntil (lsat-js reads only `expiration=`)
//     "is_expired": false, "is_pending": true,
//     "token": "LSAT <b64>:",            // Lsat#toToken() before payment
//     "authorization": "LSAT <b64>:<hex>" | null,  // Lsat#toToken() after setPreimage(preimage)
//     "is_satisfied": true | null,       // after setPreimage; null without a preimage
//     "parsed_authorization": null | { "ok": true, "payment_hash", "preimage", "token_id" }
//                                        //   | { "ok": false, "error" }  (Lsat.fromToken)
//   }
// A refusal by lsat-js (of the challenge, or of the preimage) gives
//   { "ok": false, "stage": "challenge" | "preimage", "error": "<lsat-js's message>" }, exit 0.
// Exit 2, with a message on stderr, only if stdin is not a JSON object with a string
// "www_authenticate".
'use strict';

const fs = require('fs');
const { Lsat, Identifier } = require('lsat-js');
const { decode: decodeInvoice } = require('lsat-js/dist/helpers');
const macaroon = require('macaroon');

const hex = bytes => Buffer.from(bytes).toString('hex');

const identifierFields = lsat => {
  // lsat.id is the identifier as macaroon's JSON V2 export gives it: `i` (UTF-8) or `i64`.
  const id = Identifier.fromString(lsat.id);
  return {
    version: id.version,
    payment_hash: hex(id.paymentHash),
    token_id: hex(id.tokenId),
  };
};

const macaroonFields = b64 => {
  const m = macaroon.importMacaroon(b64);
  return {
    location: m.location,
    identifier_hex: hex(m.identifier),
    signature_hex: hex(m.signature),
  };
};

const parseAuthorization = value => {
  try {
    const lsat = Lsat.fromToken(value);
    return {
      ok: true,
      payment_hash: lsat.paymentHash,
      preimage: lsat.paymentPreimage,
      token_id: identifierFields(lsat).token_id,
    };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e) };
  }
};

const run = input => {
  const header = input.www_authenticate;
  let lsat;
  try {
    // The documented entry point for a WWW-Authenticate value ("LSAT macaroon=…, invoice=…").
    lsat = Lsat.fromHeader(header);
  } catch (e) {
    return { ok: false, stage: 'challenge', error: String(e && e.message ? e.message : e) };
  }
  const invoice = decodeInvoice(lsat.invoice);
  const out = {
    ok: true,
    scheme: header.trim().split(/\s+/)[0],
    payment_hash: lsat.paymentHash,
    invoice: lsat.invoice,
    invoice_amount_sat: lsat.invoiceAmount,
    invoice_amount_msat: invoice.millisatoshis === undefined ? null : invoice.millisatoshis,
    identifier: identifierFields(lsat),
    macaroon: macaroonFields(lsat.baseMacaroon),
    caveats: lsat.getCaveats().map(c => ({
      condition: c.condition,
      comp: c.comp,
      value: String(c.value),
      encoded: c.encode(),
    })),
    valid_until: lsat.validUntil,
    is_expired: lsat.isExpired(),
    is_pending: lsat.isPending(),
    token: lsat.toToken(),
    authorization: null,
    is_satisfied: null,
    parsed_authorization: null,
  };
  if (typeof input.preimage === 'string') {
    try {
      lsat.setPreimage(input.preimage);
    } catch (e) {
      return { ok: false, stage: 'preimage', error: String(e && e.message ? e.message : e) };
    }
    out.authorization = lsat.toToken();
    out.is_satisfied = lsat.isSatisfied();
  }
  if (typeof input.authorization === 'string') {
    out.parsed_authorization = parseAuthorization(input.authorization);
  }
  return out;
};

let input;
try {
  input = JSON.parse(fs.readFileSync(0, 'utf8'));
} catch (e) {
  process.stderr.write(`stdin is not JSON: ${e.message}\n`);
  process.exit(2);
}
if (input === null || typeof input !== 'object' || typeof input.www_authenticate !== 'string') {
  process.stderr.write('stdin must be a JSON object with a string "www_authenticate"\n');
  process.exit(2);
}
process.stdout.write(JSON.stringify(run(input)) + '\n');
