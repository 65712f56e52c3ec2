// Command go-harness is tapgate's foreign interoperability harness for
// gopkg.in/macaroon.v2, the macaroon library Aperture (lightninglabs/aperture)
// uses. It is built by .ci/setup-interop as a Go module (go.mod pins
// gopkg.in/macaroon.v2 v2.1.0, fetched through the Go module proxy), to
// target/interop/go-harness.
//
// Default mode: read ONE JSON array of operations from stdin, write ONE JSON
// array of results (same order) to stdout. See ../README.md for the contract.
//
// Bench mode: `go-harness bench <iterations>` reads one JSON object
// {"header","root_key_hex","service","now"} from stdin and times what Aperture
// does for one request carrying `Authorization: L402 <b64>:<preimage hex>`.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gopkg.in/macaroon.v2"
)

type request struct {
	Op             string   `json:"op"`
	RootKeyHex     *string  `json:"root_key_hex"`
	IDHex          *string  `json:"id_hex"`
	Location       string   `json:"location"`
	Caveats        []string `json:"caveats"`
	MacaroonB64    *string  `json:"macaroon_b64"`
	AllowedCaveats []string `json:"allowed_caveats"`
}

type result map[string]interface{}

func failure(err error) result {
	return result{"ok": false, "error": err.Error()}
}

func requireString(p *string, name string) (string, error) {
	if p == nil {
		return "", fmt.Errorf("missing field %q", name)
	}
	return *p, nil
}

func requireHex(p *string, name string) ([]byte, error) {
	s, err := requireString(p, name)
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("field %q is not hex: %v", name, err)
	}
	return b, nil
}

// decodeMacaroon accepts std or URL-safe base64, padded or not (the library's
// own Base64Decode), then the library's UnmarshalBinary (V1 or V2 binary).
func decodeMacaroon(p *string) (*macaroon.Macaroon, error) {
	s, err := requireString(p, "macaroon_b64")
	if err != nil {
		return nil, err
	}
	raw, err := macaroon.Base64Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("base64 decode: %v", err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	return &m, nil
}

func encodeV2(m *macaroon.Macaroon) (result, error) {
	if m.Version() != macaroon.V2 {
		// A V1 macaroon (accepted on decode) is re-encoded as V2; the
		// format does not enter the signature. The library only sets
		// the version through its V2 JSON form, so go through that.
		var err error
		if m, err = toV2(m); err != nil {
			return nil, err
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return result{"ok": true, "v2_b64": base64.StdEncoding.EncodeToString(b)}, nil
}

// toV2 rebuilds m as a V2 macaroon via the library's V2 JSON encoding.
func toV2(m *macaroon.Macaroon) (*macaroon.Macaroon, error) {
	type cav struct {
		I64 string `json:"i64"`
		V64 string `json:"v64,omitempty"`
		L   string `json:"l,omitempty"`
	}
	obj := struct {
		C   []cav  `json:"c,omitempty"`
		L   string `json:"l,omitempty"`
		I64 string `json:"i64"`
		S64 string `json:"s64"`
	}{
		L:   m.Location(),
		I64: base64.RawURLEncoding.EncodeToString(m.Id()),
		S64: base64.RawURLEncoding.EncodeToString(m.Signature()),
	}
	for _, c := range m.Caveats() {
		obj.C = append(obj.C, cav{
			I64: base64.RawURLEncoding.EncodeToString(c.Id),
			V64: base64.RawURLEncoding.EncodeToString(c.VerificationId),
			L:   c.Location,
		})
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var out macaroon.Macaroon
	if err := out.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("re-encoding V1 macaroon as V2: %v", err)
	}
	return &out, nil
}

func addCaveats(m *macaroon.Macaroon, caveats []string) error {
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return err
		}
	}
	return nil
}

func caveatStrings(m *macaroon.Macaroon) []string {
	out := make([]string, 0, len(m.Caveats()))
	for _, c := range m.Caveats() {
		out = append(out, string(c.Id))
	}
	return out
}

func doMint(r *request) (result, error) {
	key, err := requireHex(r.RootKeyHex, "root_key_hex")
	if err != nil {
		return nil, err
	}
	id, err := requireHex(r.IDHex, "id_hex")
	if err != nil {
		return nil, err
	}
	m, err := macaroon.New(key, id, r.Location, macaroon.V2)
	if err != nil {
		return nil, err
	}
	if err := addCaveats(m, r.Caveats); err != nil {
		return nil, err
	}
	return encodeV2(m)
}

func doAttenuate(r *request) (result, error) {
	m, err := decodeMacaroon(r.MacaroonB64)
	if err != nil {
		return nil, err
	}
	if err := addCaveats(m, r.Caveats); err != nil {
		return nil, err
	}
	return encodeV2(m)
}

func doVerify(r *request) (result, error) {
	m, err := decodeMacaroon(r.MacaroonB64)
	if err != nil {
		return nil, err
	}
	key, err := requireHex(r.RootKeyHex, "root_key_hex")
	if err != nil {
		return nil, err
	}
	allowed := make(map[string]bool, len(r.AllowedCaveats))
	for _, c := range r.AllowedCaveats {
		allowed[c] = true
	}
	check := func(caveat string) error {
		if allowed[caveat] {
			return nil
		}
		return fmt.Errorf("caveat %q not satisfied", caveat)
	}
	res := result{
		"ok":       true,
		"valid":    true,
		"error":    nil,
		"id_hex":   hex.EncodeToString(m.Id()),
		"location": m.Location(),
		"caveats":  caveatStrings(m),
	}
	if verr := m.Verify(key, check, nil); verr != nil {
		res["valid"] = false
		res["error"] = verr.Error()
	}
	return res, nil
}

func doDecode(r *request) (result, error) {
	m, err := decodeMacaroon(r.MacaroonB64)
	if err != nil {
		return nil, err
	}
	return result{
		"ok":            true,
		"id_hex":        hex.EncodeToString(m.Id()),
		"location":      m.Location(),
		"caveats":       caveatStrings(m),
		"signature_hex": hex.EncodeToString(m.Signature()),
	}, nil
}

func runOp(raw json.RawMessage) (res result) {
	defer func() {
		if p := recover(); p != nil {
			res = failure(fmt.Errorf("panic: %v", p))
		}
	}()
	var r request
	if err := json.Unmarshal(raw, &r); err != nil {
		return failure(fmt.Errorf("bad op object: %v", err))
	}
	var err error
	switch r.Op {
	case "mint":
		res, err = doMint(&r)
	case "attenuate":
		res, err = doAttenuate(&r)
	case "verify":
		res, err = doVerify(&r)
	case "decode":
		res, err = doDecode(&r)
	default:
		err = fmt.Errorf("unknown op %q", r.Op)
	}
	if err != nil {
		return failure(err)
	}
	return res
}

func runOps() int {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-harness: reading stdin: %v\n", err)
		return 2
	}
	var ops []json.RawMessage
	if err := json.Unmarshal(input, &ops); err != nil {
		fmt.Fprintf(os.Stderr, "go-harness: request is not a JSON array: %v\n", err)
		return 2
	}
	results := make([]result, 0, len(ops))
	for _, op := range ops {
		results = append(results, runOp(op))
	}
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "go-harness: writing results: %v\n", err)
		return 2
	}
	if err := w.Flush(); err != nil {
		return 2
	}
	return 0
}

// ---------------------------------------------------------------------------
// Bench mode: the per-request work Aperture does (l402/header.go FromHeader,
// mint/mint.go VerifyL402, l402/satisfier.go), with macaroon.Verify driving a
// caveat checker.

// authRegex is Aperture's Authorization header pattern.
var authRegex = regexp.MustCompile("(LSAT|L402) (.*?):([a-f0-9]{64})")

type benchInput struct {
	Header     string `json:"header"`
	RootKeyHex string `json:"root_key_hex"`
	Service    string `json:"service"`
	Now        int64  `json:"now"`
}

type benchCtx struct {
	header  string
	rootKey []byte
	service string
	now     time.Time
}

// newChecker returns the first-party caveat checker for one request. Caveats
// are "condition=value" (split at the first '='). Like Aperture's
// VerifyCaveats, conditions it has no satisfier for (and caveats without '=')
// are ignored; the relevant ones are parsed and checked.
func (b *benchCtx) newChecker() func(string) error {
	servicesCond := "services"
	timeoutCond := b.service + "_valid_until"
	methodsCond := b.service + "_methods"
	return func(caveat string) error {
		parts := strings.SplitN(caveat, "=", 2)
		if len(parts) != 2 {
			return nil
		}
		cond, value := parts[0], parts[1]
		switch cond {
		case servicesCond:
			if value == "" {
				return errors.New("no services found")
			}
			found := false
			for _, raw := range strings.Split(value, ",") {
				info := strings.Split(raw, ":")
				if len(info) != 2 || info[0] == "" {
					return errors.New(`service must be of the form "name:tier"`)
				}
				if _, err := strconv.Atoi(info[1]); err != nil {
					return fmt.Errorf("service tier: %v", err)
				}
				if info[0] == b.service {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("target service %v not authorized", b.service)
			}
			return nil
		case timeoutCond:
			ts, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return fmt.Errorf("caveat value not a valid integer: %v", err)
			}
			if b.now.Before(time.Unix(ts, 0)) {
				return nil
			}
			return errors.New("not authorized to access service. L402 has expired")
		case methodsCond:
			for _, m := range strings.Split(value, ",") {
				if m == "GET" {
					return nil
				}
			}
			return errors.New("target method GET not authorized")
		default:
			return nil
		}
	}
}

// verifyOnce does the full per-request verification.
func (b *benchCtx) verifyOnce() error {
	matches := authRegex.FindStringSubmatch(b.header)
	if len(matches) != 4 {
		return errors.New("invalid auth header format")
	}
	macBase64, preimageHex := matches[2], matches[3]
	macBytes, err := base64.StdEncoding.DecodeString(macBase64)
	if err != nil {
		return fmt.Errorf("base64 decode of token failed: %v", err)
	}
	mac := &macaroon.Macaroon{}
	if err := mac.UnmarshalBinary(macBytes); err != nil {
		return fmt.Errorf("unable to unmarshal token: %v", err)
	}
	preimage, err := hex.DecodeString(preimageHex)
	if err != nil || len(preimage) != 32 {
		return errors.New("hex decode of preimage failed")
	}

	// Identifier: u16 BE version | payment_hash[32] | token_id[32].
	id := mac.Id()
	if len(id) != 66 {
		return fmt.Errorf("identifier has length %d, want 66", len(id))
	}
	if v := binary.BigEndian.Uint16(id[:2]); v != 0 {
		return fmt.Errorf("unknown L402 version: %d", v)
	}
	var paymentHash, tokenID [32]byte
	copy(paymentHash[:], id[2:34])
	copy(tokenID[:], id[34:66])
	_ = tokenID

	sum := sha256.Sum256(preimage)
	if subtle.ConstantTimeCompare(sum[:], paymentHash[:]) != 1 {
		return errors.New("invalid preimage for payment hash")
	}

	return mac.Verify(b.rootKey, b.newChecker(), nil)
}

func runBench(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: go-harness bench <iterations>  (JSON object on stdin)")
		return 2
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "go-harness: bad iteration count %q\n", args[0])
		return 2
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-harness: reading stdin: %v\n", err)
		return 2
	}
	var in benchInput
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "go-harness: bad bench input: %v\n", err)
		return 2
	}
	rootKey, err := hex.DecodeString(in.RootKeyHex)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-harness: root_key_hex: %v\n", err)
		return 2
	}
	b := &benchCtx{
		header:  in.Header,
		rootKey: rootKey,
		service: in.Service,
		now:     time.Unix(in.Now, 0),
	}

	warmup := n / 10
	if warmup < 100 {
		warmup = 100
	}
	if warmup > 10000 {
		warmup = 10000
	}
	for i := 0; i < warmup; i++ {
		if err := b.verifyOnce(); err != nil {
			fmt.Fprintf(os.Stderr, "go-harness: warm-up iteration %d failed: %v\n", i, err)
			return 1
		}
	}

	start := time.Now()
	for i := 0; i < n; i++ {
		if err := b.verifyOnce(); err != nil {
			fmt.Fprintf(os.Stderr, "go-harness: iteration %d failed: %v\n", i, err)
			return 1
		}
	}
	elapsed := time.Since(start)

	nsPerOp := float64(elapsed.Nanoseconds()) / float64(n)
	out := struct {
		Impl       string  `json:"impl"`
		Iterations int     `json:"iterations"`
		NsPerOp    float64 `json:"ns_per_op"`
		OpsPerSec  float64 `json:"ops_per_sec"`
		GoVersion  string  `json:"go_version"`
	}{"go macaroon.v2", n, nsPerOp, 1e9 / nsPerOp, runtime.Version()}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 2
	}
	return 0
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "bench":
			os.Exit(runBench(os.Args[2:]))
		default:
			fmt.Fprintf(os.Stderr, "go-harness: unknown mode %q (use no argument, or bench <iterations>)\n", os.Args[1])
			os.Exit(2)
		}
	}
	os.Exit(runOps())
}
