// Command bolt11check decodes BOLT 11 invoices with lnd's own decoder (zpay32, from the lnd
// module integration/regtest/go.mod pins) and prints what it read, one JSON object per line.
// tapgate's tests feed it simnet's invoices to check them with a decoder that shares no code
// with the Rust encoder: zpay32.Decode verifies the bech32 checksum and recovers the payee
// from the signature (or checks it against an explicit `n` field), so an invoice that
// decodes here is one lnd would pay.
//
// usage: bolt11check < invoices.txt   (one invoice per line; a line that fails to decode
// prints {"error": "..."} and the command exits 1 after the last line)
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

type hop struct {
	Node    string `json:"node"`
	Scid    uint64 `json:"scid"`
	FeeBase uint32 `json:"fee_base_msat"`
	FeePpm  uint32 `json:"fee_ppm"`
	Cltv    uint16 `json:"cltv_expiry_delta"`
}

type decoded struct {
	Payee           string  `json:"payee"`
	PaymentHash     string  `json:"payment_hash"`
	PaymentAddr     string  `json:"payment_addr"`
	AmountMsat      *uint64 `json:"amount_msat"`
	Timestamp       int64   `json:"timestamp"`
	ExpirySecs      int64   `json:"expiry_secs"`
	Description     *string `json:"description"`
	DescriptionHash string  `json:"description_hash"`
	MinFinalCltv    uint64  `json:"min_final_cltv_expiry"`
	RouteHints      [][]hop `json:"route_hints"`
	Features        []int   `json:"features"`
}

func decode(s string) (*decoded, error) {
	inv, err := zpay32.Decode(s, &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	d := &decoded{
		Payee:        hex.EncodeToString(inv.Destination.SerializeCompressed()),
		Timestamp:    inv.Timestamp.Unix(),
		ExpirySecs:   int64(inv.Expiry().Seconds()),
		Description:  inv.Description,
		MinFinalCltv: inv.MinFinalCLTVExpiry(),
		RouteHints:   [][]hop{},
		Features:     []int{},
	}
	if inv.PaymentHash != nil {
		d.PaymentHash = hex.EncodeToString(inv.PaymentHash[:])
	}
	inv.PaymentAddr.WhenSome(func(a [32]byte) { d.PaymentAddr = hex.EncodeToString(a[:]) })
	if inv.MilliSat != nil {
		m := uint64(*inv.MilliSat)
		d.AmountMsat = &m
	}
	if inv.DescriptionHash != nil {
		d.DescriptionHash = hex.EncodeToString(inv.DescriptionHash[:])
	}
	for _, route := range inv.RouteHints {
		hops := []hop{}
		for _, h := range route {
			hops = append(hops, hop{
				Node:    hex.EncodeToString(h.NodeID.SerializeCompressed()),
				Scid:    h.ChannelID,
				FeeBase: h.FeeBaseMSat,
				FeePpm:  h.FeeProportionalMillionths,
				Cltv:    h.CLTVExpiryDelta,
			})
		}
		d.RouteHints = append(d.RouteHints, hops)
	}
	if inv.Features != nil {
		for bit := 0; bit < 256; bit++ {
			if inv.Features.IsSet(lnwire.FeatureBit(bit)) {
				d.Features = append(d.Features, bit)
			}
		}
	}
	return d, nil
}

func main() {
	out := json.NewEncoder(os.Stdout)
	failed := false
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 16*1024), 16*1024)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		d, err := decode(line)
		if err != nil {
			failed = true
			_ = out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		_ = out.Encode(d)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "bolt11check:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
