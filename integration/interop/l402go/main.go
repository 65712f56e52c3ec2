// Command l402-readers reads an L402 challenge and credential the way two Go L402 clients and
// Aperture's server do, so that tapgate's tests can check that tapgate's `WWW-Authenticate`
// and `Authorization` values pass them. It is built by .ci/setup-interop from this module
// (go.mod pins github.com/lightninglabs/aperture v0.5.0 and lnd, fetched through the Go module
// proxy) to target/interop/l402-readers. No upstream source is copied here: where an upstream
// rule lives in unexported code, the rule is stated below with its file and tag, and every
// exported function it calls is called for real.
//
//   - aperture_client: Aperture's own L402 client, `l402.ClientInterceptor.payL402Token`
//     (lightninglabs/aperture v0.5.0, l402/client_interceptor.go). The method and its
//     `authHeaderRegex` are unexported, and it runs only inside a gRPC call with an lnd
//     connection, so its steps are stated here: take the first `WWW-Authenticate` value that
//     matches `(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"`, decode the macaroon with
//     `base64.StdEncoding`, decode the invoice with lnd's exported `zpay32.Decode` on the
//     network's parameters (the payment hash is the invoice's), then `tokenFromChallenge`
//     (unexported): `macaroon.UnmarshalBinary`. Called for real: zpay32.Decode,
//     Macaroon.UnmarshalBinary, and Aperture's exported l402.DecodeIdentifier to report what
//     the macaroon commits to (the interceptor itself does not look).
//   - lnget: lightninglabs/lnget v1.1.0, l402/header.go `IsL402Challenge` and `ParseChallenge`
//     (both exported; lnget is not in the Go module proxy this project builds from, see
//     integration/interop/README.md, so their rules are stated here): only the FIRST
//     `WWW-Authenticate` value is read (`resp.Header.Get`); it must start with `l402 ` or
//     `lsat ` in any case; it must match `(?i)(LSAT|L402)\s+macaroon="([^"]+)",\s*invoice="([^"]+)"`;
//     the macaroon is decoded with `base64.StdEncoding`, else `base64.RawURLEncoding`; then
//     `macaroon.UnmarshalBinary`; the payment hash comes from the macaroon's identifier through
//     Aperture's exported `l402.DecodeIdentifier` (lnget calls it; v0.4.2 in lnget's go.mod,
//     the same code as v0.5.0's); the amount from the invoice's human-readable part
//     (`^ln(?:bcrt|bc|tb)(\d+)([munp])1`, m = 100,000 sat, u = 100, n = 1/10, p = 1/10,000).
//     The prefix it mirrors in its `Authorization` is `LSAT` when the scheme was LSAT in any
//     case, `L402` otherwise (`ParseAuthPrefix`).
//   - aperture_server: Aperture's exported `l402.FromHeader` on the `Authorization` values a
//     client sends (the server side of the same exchange).
//
// stdin: ONE JSON object {"www_authenticate": ["..."], "authorization": ["..."], "network":
// "regtest"}; stdout: ONE JSON object {"aperture_client", "lnget", "aperture_server"}, each
// {"ok": true, ...} or {"ok": false, "error"}; exit 0 (2 only when stdin is not that object).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightninglabs/aperture/l402"
	"github.com/lightningnetwork/lnd/zpay32"
	"gopkg.in/macaroon.v2"
)

type input struct {
	WWWAuthenticate []string `json:"www_authenticate"`
	Authorization   []string `json:"authorization"`
	Network         string   `json:"network"`
}

type result map[string]interface{}

func failure(stage string, err error) result {
	return result{"ok": false, "stage": stage, "error": err.Error()}
}

var (
	// The rule of Aperture v0.5.0 l402/client_interceptor.go `authHeaderRegex`.
	apertureClientRule = regexp.MustCompile(`(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"`)
	// The rule of lnget v1.1.0 l402/header.go `challengeRegex`.
	lngetRule = regexp.MustCompile(`(?i)(LSAT|L402)\s+macaroon="([^"]+)",\s*invoice="([^"]+)"`)
	// The rule of lnget v1.1.0 l402/header.go `bolt11AmountRegex`.
	lngetAmountRule = regexp.MustCompile(`^ln(?:bcrt|bc|tb)(\d+)([munp])1`)
)

func params(network string) (*chaincfg.Params, error) {
	switch network {
	case "", "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "mainnet":
		return &chaincfg.MainNetParams, nil
	case "testnet":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	}
	return nil, fmt.Errorf("unknown network %q", network)
}

// describe reports the macaroon as go-macaroon and Aperture's identifier decoder read it.
func describe(mac *macaroon.Macaroon, r result) {
	r["macaroon_b64"] = base64.StdEncoding.EncodeToString(mustMarshal(mac))
	r["location"] = mac.Location()
	r["identifier_hex"] = hex.EncodeToString(mac.Id())
	caveats := []string{}
	for _, c := range mac.Caveats() {
		caveats = append(caveats, string(c.Id))
	}
	r["caveats"] = caveats
	if id, err := l402.DecodeIdentifier(bytes.NewReader(mac.Id())); err == nil {
		r["identifier"] = result{
			"version":      id.Version,
			"payment_hash": hex.EncodeToString(id.PaymentHash[:]),
			"token_id":     hex.EncodeToString(id.TokenID[:]),
		}
	} else {
		r["identifier_error"] = err.Error()
	}
}

func mustMarshal(mac *macaroon.Macaroon) []byte {
	b, err := mac.MarshalBinary()
	if err != nil {
		return nil
	}
	return b
}

func apertureClient(values []string, net *chaincfg.Params) result {
	var matches []string
	for _, v := range values {
		matches = apertureClientRule.FindStringSubmatch(v)
		if len(matches) == 4 {
			break
		}
	}
	if len(matches) != 4 {
		return failure("header", fmt.Errorf("invalid auth header format"))
	}
	macBytes, err := base64.StdEncoding.DecodeString(matches[2])
	if err != nil {
		return failure("base64", err)
	}
	invoice, err := zpay32.Decode(matches[3], net)
	if err != nil {
		return failure("invoice", err)
	}
	mac := &macaroon.Macaroon{}
	if err := mac.UnmarshalBinary(macBytes); err != nil {
		return failure("macaroon", err)
	}
	r := result{"ok": true, "scheme": matches[1], "invoice": matches[3]}
	if invoice.PaymentHash != nil {
		r["payment_hash"] = hex.EncodeToString(invoice.PaymentHash[:])
	}
	if invoice.MilliSat != nil {
		r["invoice_msat"] = uint64(*invoice.MilliSat)
	}
	describe(mac, r)
	return r
}

func lngetAmountSat(invoice string) int64 {
	m := lngetAmountRule.FindStringSubmatch(strings.ToLower(invoice))
	if len(m) != 3 {
		return 0
	}
	amount, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0
	}
	switch m[2] {
	case "m":
		return amount * 100_000
	case "u":
		return amount * 100
	case "n":
		return amount / 10
	case "p":
		return amount / 10_000
	}
	return 0
}

func lnget(values []string) result {
	first := ""
	if len(values) > 0 {
		first = values[0]
	}
	lower := strings.ToLower(first)
	if !strings.HasPrefix(lower, "l402 ") && !strings.HasPrefix(lower, "lsat ") {
		return failure("detect", fmt.Errorf("the first WWW-Authenticate value is not an L402 or LSAT challenge"))
	}
	matches := lngetRule.FindStringSubmatch(first)
	if len(matches) != 4 {
		return failure("header", fmt.Errorf("invalid L402 challenge format"))
	}
	macBytes, err := base64.StdEncoding.DecodeString(matches[2])
	if err != nil {
		macBytes, err = base64.RawURLEncoding.DecodeString(matches[2])
	}
	if err != nil {
		return failure("base64", err)
	}
	mac := &macaroon.Macaroon{}
	if err := mac.UnmarshalBinary(macBytes); err != nil {
		return failure("macaroon", err)
	}
	id, err := l402.DecodeIdentifier(bytes.NewReader(mac.Id()))
	if err != nil {
		return failure("identifier", err)
	}
	prefix := "L402"
	if strings.ToUpper(matches[1]) == "LSAT" {
		prefix = "LSAT"
	}
	r := result{
		"ok":                 true,
		"prefix":             prefix,
		"invoice":            matches[3],
		"payment_hash":       hex.EncodeToString(id.PaymentHash[:]),
		"invoice_amount_sat": lngetAmountSat(matches[3]),
	}
	describe(mac, r)
	return r
}

func apertureServer(values []string) result {
	if len(values) == 0 {
		return nil
	}
	h := http.Header{}
	for _, v := range values {
		h.Add(l402.HeaderAuthorization, v)
	}
	mac, preimage, err := l402.FromHeader(&h)
	if err != nil {
		return failure("header", err)
	}
	r := result{"ok": true, "preimage_hex": hex.EncodeToString(preimage[:])}
	describe(mac, r)
	return r
}

func main() {
	var in input
	dec := json.NewDecoder(os.Stdin)
	if err := dec.Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "stdin must be one JSON object: %v\n", err)
		os.Exit(2)
	}
	out := result{}
	net, err := params(in.Network)
	if err != nil {
		out["aperture_client"] = failure("network", err)
	} else {
		out["aperture_client"] = apertureClient(in.WWWAuthenticate, net)
	}
	out["lnget"] = lnget(in.WWWAuthenticate)
	if s := apertureServer(in.Authorization); s != nil {
		out["aperture_server"] = s
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
