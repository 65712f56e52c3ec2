// Command netup starts tapgate's real regtest network: btcd and four tapd-integrated nodes
// (lnd and tapd in one process) named and arranged like simnet's, then writes
// DIR/network.toml in the format `tapgate simnet` writes. It is tapgate's own code, built
// against the published lnd, tapd and btcd modules pinned in ../go.mod; up.sh runs it.
//
//	alice     holds the USD stablecoin (decimal display 6) in an asset channel with edge
//	bob       has a sats channel with edge
//	edge      issues the stablecoin, is the universe and proof courier, and is the RFQ edge
//	merchant  has a sats channel and an asset channel with edge
//
// Every node runs tapd's built-in mock price oracle at the same rate (USD 100,000 per BTC
// unless --usd-per-btc is given), as tapd's own custom-channel itests do
// (lightninglabs/taproot-assets itest/custom_channels/vars.go, v0.8.1). The mock oracle quotes
// for 3,600 s (tapcfg/server.go, v0.8.1), the lifetime Polar's litd networks also show.
//
// The processes are started detached (their own session); their pids go to DIR/pids, one
// "name pid" a line, for down.sh. Logs go to the --logs directory.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightninglabs/taproot-assets/taprpc"
	"github.com/lightninglabs/taproot-assets/taprpc/mintrpc"
	"github.com/lightninglabs/taproot-assets/taprpc/tapchannelrpc"
	"github.com/lightninglabs/taproot-assets/taprpc/universerpc"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"gopkg.in/macaroon.v2"
)

const (
	rpcUser = "tapgate"
	rpcPass = "tapgate"

	// One whole dollar in units of a 6-decimal stablecoin.
	unitsPerUSD = 1_000_000

	mintUnits       = 1_000_000_000_000 // $1,000,000
	aliceUnits      = 1_000_000_000     // $1,000 sent to alice, all of it into her channel
	merchantChUnits = 1_000_000_000     // $1,000 on edge's side of the edge-merchant channel
	satsChannel     = 5_000_000         // bob-edge and edge-merchant sats channels

	// The push of tapd's custom-channel itests (DefaultPushSat in itest/custom_channels/vars.go).
	assetChannelPushSat = 1062

	mockOracle = "use_mock_price_oracle_service_promise_to_not_use_on_mainnet"
)

var names = []string{"alice", "bob", "edge", "merchant"}

type node struct {
	name                   string
	dir, lndDir, tapdDir   string
	rpcPort, p2pPort, rest int
	pubkey                 string
	conn                   *grpc.ClientConn
	ln                     lnrpc.LightningClient
	tap                    taprpc.TaprootAssetsClient
	mint                   mintrpc.MintClient
	uni                    universerpc.UniverseClient
	tch                    tapchannelrpc.TaprootAssetChannelsClient
}

func (n *node) rpcAddr() string  { return fmt.Sprintf("127.0.0.1:%d", n.rpcPort) }
func (n *node) restAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.rest) }
func (n *node) tlsCert() string  { return filepath.Join(n.lndDir, "tls.cert") }
func (n *node) lndMacaroon(kind string) string {
	return filepath.Join(n.dir, "macaroons", kind+".macaroon")
}
func (n *node) tapdMacaroon() string {
	return filepath.Join(n.dir, "macaroons", "tapd-admin.macaroon")
}

type network struct {
	dir, logs, bin string
	usdPerBTC      uint64
	btcdRPC        int
	btcdP2P        int
	btcd           *rpcclient.Client
	minerKey       *btcec.PrivateKey
	minerScript    []byte
	matureHashes   []*chainhash.Hash
	nodes          map[string]*node
	pids           *os.File
	procs          map[string]int
	start          time.Time
}

func main() {
	dir := flag.String("dir", "", "the network's directory (created; must not hold a running network)")
	bin := flag.String("bin", "", "where btcd and tapd-integrated are")
	logs := flag.String("logs", "", "where the daemons' logs go (default DIR/logs)")
	usd := flag.Uint64("usd-per-btc", 100_000, "the mock oracle's price, whole US dollars per BTC")
	timeout := flag.Duration("timeout", 8*time.Minute, "give up after this long")
	flag.Parse()
	if *dir == "" || *bin == "" {
		fmt.Fprintln(os.Stderr, "usage: netup --dir DIR --bin BINDIR [--logs DIR] [--usd-per-btc N]")
		os.Exit(2)
	}
	n := &network{dir: *dir, bin: *bin, logs: *logs, usdPerBTC: *usd, nodes: map[string]*node{}, procs: map[string]int{}, start: time.Now()}
	if n.logs == "" {
		n.logs = filepath.Join(n.dir, "logs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := n.up(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "netup: %v\n", err)
		fmt.Fprintf(os.Stderr, "netup: the daemons' logs are in %s; stop what started with integration/regtest/down.sh %s\n", n.logs, n.dir)
		os.Exit(1)
	}
}

func (n *network) say(format string, args ...any) {
	fmt.Printf("regtest [%5.1fs] %s\n", time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

// nextPort is where freePort looks next: below Linux's ephemeral range (32768-60999), so that
// no outgoing connection's source port takes a port chosen here before its daemon binds it.
var nextPort = 20000 + int(time.Now().UnixNano()%5000)*2

func freePort() (int, error) {
	for ; nextPort < 32768; nextPort++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", nextPort))
		if err != nil {
			continue
		}
		l.Close()
		nextPort++
		return nextPort - 1, nil
	}
	return 0, errors.New("no free port below 32768 on 127.0.0.1")
}

func (n *network) up(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(n.dir, "pids")); err == nil {
		return fmt.Errorf("%s already holds a network (pids file present): stop it with down.sh first", n.dir)
	}
	for _, d := range []string{n.dir, n.logs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	pids, err := os.OpenFile(filepath.Join(n.dir, "pids"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	n.pids = pids
	defer pids.Close()

	if err := n.startBtcd(ctx); err != nil {
		return fmt.Errorf("btcd: %w", err)
	}
	for _, name := range names {
		if err := n.startNode(name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, name := range names {
		if err := n.spawnNode(n.nodes[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, name := range names {
		if err := n.waitReady(ctx, n.nodes[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := n.fund(ctx); err != nil {
		return fmt.Errorf("funding the nodes: %w", err)
	}
	if err := n.connectPeers(ctx); err != nil {
		return err
	}
	assetID, err := n.mintStablecoin(ctx)
	if err != nil {
		return fmt.Errorf("minting the stablecoin: %w", err)
	}
	if err := n.syncUniverses(ctx, assetID); err != nil {
		return fmt.Errorf("universe sync: %w", err)
	}
	if err := n.sendToAlice(ctx, assetID); err != nil {
		return fmt.Errorf("sending the stablecoin to alice: %w", err)
	}
	if err := n.openChannels(ctx, assetID); err != nil {
		return fmt.Errorf("opening channels: %w", err)
	}
	if err := n.writeNetworkFile(assetID); err != nil {
		return err
	}
	n.say("ready: %s", filepath.Join(n.dir, "network.toml"))
	return nil
}

// spawn starts a daemon detached from this process, logging to logs/NAME.log.
func (n *network) spawn(name string, path string, args ...string) error {
	log, err := os.OpenFile(filepath.Join(n.logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(n.pids, "%s %d\n", name, cmd.Process.Pid)
	n.procs[name] = cmd.Process.Pid
	_ = cmd.Process.Release()
	return err
}

// exited says whether a daemon this process started has died (gone, or a zombie).
func (n *network) exited(name string) error {
	pid, ok := n.procs[name]
	if !ok {
		return nil
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || bytes.Contains(stat, []byte(") Z ")) {
		return fmt.Errorf("%s (pid %d) exited; see %s", name, pid, filepath.Join(n.logs, name+".log"))
	}
	return nil
}

func (n *network) startBtcd(ctx context.Context) error {
	var err error
	if n.btcdRPC, err = freePort(); err != nil {
		return err
	}
	if n.btcdP2P, err = freePort(); err != nil {
		return err
	}
	// The miner's coinbase goes to a key this process holds; it funds the nodes from there.
	if n.minerKey, err = btcec.NewPrivateKey(); err != nil {
		return err
	}
	pkHash := btcutil.Hash160(n.minerKey.PubKey().SerializeCompressed())
	addr, err := btcutil.NewAddressWitnessPubKeyHash(pkHash, &chaincfg.RegressionNetParams)
	if err != nil {
		return err
	}
	if n.minerScript, err = txscript.PayToAddrScript(addr); err != nil {
		return err
	}
	d := filepath.Join(n.dir, "btcd")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	n.say("starting btcd (rpc 127.0.0.1:%d)", n.btcdRPC)
	err = n.spawn("btcd", filepath.Join(n.bin, "btcd"),
		"--regtest", "--txindex",
		"--datadir="+filepath.Join(d, "data"), "--logdir="+filepath.Join(d, "logs"),
		"--rpcuser="+rpcUser, "--rpcpass="+rpcPass,
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", n.btcdRPC),
		fmt.Sprintf("--listen=127.0.0.1:%d", n.btcdP2P),
		"--rpccert="+filepath.Join(d, "rpc.cert"), "--rpckey="+filepath.Join(d, "rpc.key"),
		"--rpcmaxclients=100", "--rpcmaxwebsockets=100", "--nobanning",
		"--miningaddr="+addr.EncodeAddress(), "--debuglevel=info",
	)
	if err != nil {
		return err
	}
	n.say("waiting for btcd's RPC certificate and port")
	var cert []byte
	if err := poll(ctx, "btcd's rpc.cert", func() error {
		cert, err = os.ReadFile(filepath.Join(d, "rpc.cert"))
		return err
	}); err != nil {
		return err
	}
	n.btcd, err = rpcclient.New(&rpcclient.ConnConfig{
		Host: fmt.Sprintf("127.0.0.1:%d", n.btcdRPC), User: rpcUser, Pass: rpcPass,
		HTTPPostMode: true, Certificates: cert,
	}, nil)
	if err != nil {
		return err
	}
	if err := poll(ctx, "btcd's RPC", func() error { _, err := n.btcd.GetBlockCount(); return err }); err != nil {
		return err
	}
	// lnd waits for its backend to look synced, which a chain whose tip is the 2011 genesis
	// block never does; the first coinbase must mature (100 blocks) before it can pay; and
	// btcd regtest activates segwit by BIP9 signalling, at height 432 (3 windows of 144).
	n.say("mining 500 blocks to the miner's key (segwit activates at 432 on regtest)")
	n.matureHashes, err = n.btcd.Generate(500)
	return err
}

func (n *network) startNode(name string) error {
	nd := &node{name: name, dir: filepath.Join(n.dir, name)}
	nd.lndDir, nd.tapdDir = filepath.Join(nd.dir, "lnd"), filepath.Join(nd.dir, "tapd")
	for _, p := range []*int{&nd.rpcPort, &nd.p2pPort, &nd.rest} {
		port, err := freePort()
		if err != nil {
			return err
		}
		*p = port
	}
	n.nodes[name] = nd
	return nil
}

func (n *network) spawnNode(nd *node) error {
	for _, d := range []string{nd.lndDir, nd.tapdDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	n.say("starting %s (gRPC %s, lnd and tapd in one process)", nd.name, nd.rpcAddr())
	return n.spawn(nd.name, filepath.Join(n.bin, "tapd-integrated"), n.nodeArgs(nd, n.nodes["edge"])...)
}

// nodeArgs are the flags of one tapd-integrated node. The lnd flags follow tapd's custom-channel
// itests (lightninglabs/taproot-assets itest/custom_channels/vars.go, v0.8.1), less the flags that
// exist only in `integration`-tagged builds (--protocol.anchors, --dev.*).
func (n *network) nodeArgs(nd *node, edge *node) []string {
	btcdDir := filepath.Join(n.dir, "btcd")
	lnd := []string{
		"lnddir=" + nd.lndDir,
		"alias=" + nd.name,
		fmt.Sprintf("rpclisten=127.0.0.1:%d", nd.rpcPort),
		fmt.Sprintf("listen=127.0.0.1:%d", nd.p2pPort),
		"restlisten=" + nd.restAddr(),
		"noseedbackup",
		// tapd-integrated registers tapd's services on lnd's gRPC server, but lnd's
		// interceptor only knows lnd's own permission map, so with macaroons on every tapd
		// call fails with "unknown permissions required for method"; and the process reads
		// readonly.macaroon before lnd has written it. Its itests run with --no-macaroons
		// too (itest/integrated_node.go). See writeMacaroons.
		"no-macaroons",
		"debuglevel=info",
		"bitcoin.active", "bitcoin.regtest", "bitcoin.node=btcd",
		"bitcoin.defaultremotedelay=4",
		fmt.Sprintf("btcd.rpchost=127.0.0.1:%d", n.btcdRPC),
		"btcd.rpcuser=" + rpcUser, "btcd.rpcpass=" + rpcPass,
		"btcd.rpccert=" + filepath.Join(btcdDir, "rpc.cert"),
		"trickledelay=50",
		"gossip.sub-batch-delay=5ms",
		"caches.rpc-graph-cache-duration=100ms",
		"default-remote-max-htlcs=483",
		"dust-threshold=5000000",
		"rpcmiddleware.enable",
		"protocol.option-scid-alias",
		"protocol.zero-conf",
		"protocol.simple-taproot-chans",
		"protocol.simple-taproot-overlay-chans",
		"protocol.custom-message=17",
		"accept-keysend",
		// merchant has two channels with edge pending at once (lnd allows one by default).
		"maxpendingchannels=10",
	}
	tapd := []string{
		"tapddir=" + nd.tapdDir,
		"network=regtest",
		"debuglevel=info",
		"allow-public-uni-proof-courier",
		"universe.public-access=rw",
		"universe.sync-all-assets",
		"universerpccourier.skipinitdelay",
		"universerpccourier.backoffresetwait=100ms",
		"universerpccourier.numtries=5",
		"universerpccourier.initialbackoff=300ms",
		"universerpccourier.maxbackoff=600ms",
		"custodianproofretrievaldelay=500ms",
		// The default courier is a public universe, out of reach here: use the edge's.
		"proofcourieraddr=universerpc://" + edge.rpcAddr(),
		"experimental.rfq.priceoracleaddress=" + mockOracle,
		fmt.Sprintf("experimental.rfq.mockoracleassetsperbtc=%d", n.usdPerBTC*unitsPerUSD),
		"experimental.rfq.acceptpricedeviationppm=50000",
	}
	var args []string
	for _, a := range lnd {
		args = append(args, "--lnd."+a)
	}
	for _, a := range tapd {
		args = append(args, "--taproot-assets."+a)
	}
	return append(args, "--ready-file="+filepath.Join(nd.dir, "ready"))
}

func (n *network) waitReady(ctx context.Context, nd *node) error {
	n.say("waiting for %s to be ready (lnd synced, tapd started)", nd.name)
	if err := poll(ctx, nd.name+"'s ready file", func() error {
		if err := n.exited(nd.name); err != nil {
			return permanent{err}
		}
		_, err := os.Stat(filepath.Join(nd.dir, "ready"))
		return err
	}); err != nil {
		return err
	}
	creds, err := credentials.NewClientTLSFromFile(nd.tlsCert(), "")
	if err != nil {
		return err
	}
	if err := writeMacaroons(nd); err != nil {
		return fmt.Errorf("macaroon files: %w", err)
	}
	conn, err := grpc.NewClient(nd.rpcAddr(), grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	nd.conn = conn
	nd.ln = lnrpc.NewLightningClient(conn)
	nd.tap = taprpc.NewTaprootAssetsClient(conn)
	nd.mint = mintrpc.NewMintClient(conn)
	nd.uni = universerpc.NewUniverseClient(conn)
	nd.tch = tapchannelrpc.NewTaprootAssetChannelsClient(conn)
	return poll(ctx, nd.name+"'s tapd", func() error {
		info, err := nd.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			return err
		}
		nd.pubkey = info.IdentityPubkey
		_, err = nd.tap.GetInfo(ctx, &taprpc.GetInfoRequest{})
		return err
	})
}

// writeMacaroons writes the macaroon files network.toml names. tapd-integrated v0.8.1 runs with
// --lnd.no-macaroons (see nodeArgs), so lnd writes none and checks none: these are well-formed
// macaroons (V2, gopkg.in/macaroon.v2) under a random root key that no daemon knows, so that
// tapgate sends exactly what it sends to litd, and a daemon that did check would refuse them.
func writeMacaroons(nd *node) error {
	files := []string{nd.lndMacaroon("admin"), nd.lndMacaroon("invoice"), nd.lndMacaroon("readonly"), nd.tapdMacaroon()}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		m, err := macaroon.New(key, id, "lnd", macaroon.LatestVersion)
		if err != nil {
			return err
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// mine makes blocks and waits until every node's lnd has seen them.
func (n *network) mine(ctx context.Context, blocks uint32) error {
	hashes, err := n.btcd.Generate(blocks)
	if err != nil {
		return err
	}
	height, err := n.btcd.GetBlockCount()
	if err != nil {
		return err
	}
	_ = hashes
	for _, name := range names {
		nd := n.nodes[name]
		if nd.conn == nil {
			continue
		}
		if err := poll(ctx, fmt.Sprintf("%s to sync to height %d", name, height), func() error {
			info, err := nd.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
			if err != nil {
				return err
			}
			if int64(info.BlockHeight) < height || !info.SyncedToChain {
				return fmt.Errorf("at height %d", info.BlockHeight)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// fund pays each node 5 outputs of 2 BTC from the first
// coinbase, so that each can fund several things at once.
func (n *network) fund(ctx context.Context) error {
	block, err := n.btcd.GetBlock(n.matureHashes[0])
	if err != nil {
		return err
	}
	coinbase := block.Transactions[0]
	value := coinbase.TxOut[0].Value
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(coinbase.TxHash()), 0), nil, nil))
	var total int64
	for _, name := range names {
		resp, err := n.nodes[name].ln.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
		if err != nil {
			return fmt.Errorf("%s: new address: %w", name, err)
		}
		addr, err := btcutil.DecodeAddress(resp.Address, &chaincfg.RegressionNetParams)
		if err != nil {
			return err
		}
		script, err := txscript.PayToAddrScript(addr)
		if err != nil {
			return err
		}
		for i := 0; i < 5; i++ {
			tx.AddTxOut(wire.NewTxOut(2*btcutil.SatoshiPerBitcoin, script))
			total += 2 * btcutil.SatoshiPerBitcoin
		}
	}
	const fee = 100_000
	if change := value - total - fee; change > 0 {
		tx.AddTxOut(wire.NewTxOut(change, n.minerScript))
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(n.minerScript, value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, value,
		n.minerScript, txscript.SigHashAll, n.minerKey, true)
	if err != nil {
		return err
	}
	tx.TxIn[0].Witness = wit
	if _, err := n.btcd.SendRawTransaction(tx, true); err != nil {
		return fmt.Errorf("sending the funding transaction: %w", err)
	}
	n.say("paid each node 5 x 2 BTC; confirming")
	if err := n.mine(ctx, 6); err != nil {
		return err
	}
	for _, name := range names {
		nd := n.nodes[name]
		if err := poll(ctx, name+"'s confirmed balance", func() error {
			b, err := nd.ln.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
			if err != nil {
				return err
			}
			if b.ConfirmedBalance < 10*btcutil.SatoshiPerBitcoin {
				return fmt.Errorf("confirmed %d sat", b.ConfirmedBalance)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func (n *network) connectPeers(ctx context.Context) error {
	edge := n.nodes["edge"]
	for _, name := range []string{"alice", "bob", "merchant"} {
		nd := n.nodes[name]
		n.say("connecting %s to edge", name)
		if err := n.ensureConnected(ctx, nd, edge); err != nil {
			return err
		}
	}
	return nil
}

func (n *network) ensureConnected(ctx context.Context, a, b *node) error {
	return poll(ctx, a.name+" connected to "+b.name, func() error {
		peers, err := a.ln.ListPeers(ctx, &lnrpc.ListPeersRequest{})
		if err != nil {
			return err
		}
		for _, p := range peers.Peers {
			if p.PubKey == b.pubkey {
				return nil
			}
		}
		_, err = a.ln.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
			Addr: &lnrpc.LightningAddress{Pubkey: b.pubkey, Host: fmt.Sprintf("127.0.0.1:%d", b.p2pPort)},
			Perm: true,
		})
		if err != nil && !strings.Contains(err.Error(), "already connected") {
			return err
		}
		return errors.New("not yet in the peer list")
	})
}

func (n *network) mintStablecoin(ctx context.Context) ([]byte, error) {
	edge := n.nodes["edge"]
	n.say("edge mints the USD stablecoin (decimal display 6, %d units)", uint64(mintUnits))
	_, err := edge.mint.MintAsset(ctx, &mintrpc.MintAssetRequest{Asset: &mintrpc.MintAsset{
		AssetType: taprpc.AssetType_NORMAL,
		Name:      "USD",
		AssetMeta: &taprpc.AssetMeta{
			Data: []byte(`{"description":"tapgate regtest USD stablecoin"}`),
			Type: taprpc.AssetMetaType_META_TYPE_JSON,
		},
		Amount:         mintUnits,
		DecimalDisplay: 6,
	}})
	if err != nil {
		return nil, err
	}
	if _, err := edge.mint.FinalizeBatch(ctx, &mintrpc.FinalizeBatchRequest{}); err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	var id []byte
	err = poll(ctx, "the minting transaction to confirm", func() error {
		if err := n.mineIfMempool(); err != nil {
			return err
		}
		assets, err := edge.tap.ListAssets(ctx, &taprpc.ListAssetRequest{})
		if err != nil {
			return err
		}
		for _, a := range assets.Assets {
			if a.AssetGenesis != nil && a.AssetGenesis.Name == "USD" {
				id = a.AssetGenesis.AssetId
				return nil
			}
		}
		return errors.New("not listed yet")
	})
	if err != nil {
		return nil, err
	}
	n.say("asset id %x", id)
	return id, n.mine(ctx, 1)
}

// mineIfMempool mines one block when the mempool holds anything.
func (n *network) mineIfMempool() error {
	txs, err := n.btcd.GetRawMempool()
	if err != nil {
		return err
	}
	if len(txs) > 0 {
		_, err = n.btcd.Generate(1)
	}
	return err
}

func (n *network) syncUniverses(ctx context.Context, assetID []byte) error {
	edge := n.nodes["edge"]
	for _, name := range []string{"alice", "bob", "merchant"} {
		nd := n.nodes[name]
		n.say("%s syncs its universe from edge", name)
		_, err := nd.uni.AddFederationServer(ctx, &universerpc.AddFederationServerRequest{
			Servers: []*universerpc.UniverseFederationServer{{Host: edge.rpcAddr()}},
		})
		if err != nil && !strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("%s: add federation server: %w", name, err)
		}
		err = poll(ctx, name+" to learn the asset", func() error {
			if _, err := nd.uni.SyncUniverse(ctx, &universerpc.SyncRequest{
				UniverseHost: edge.rpcAddr(), SyncMode: universerpc.UniverseSyncMode_SYNC_FULL,
			}); err != nil {
				return err
			}
			_, err := nd.tap.FetchAssetMeta(ctx, &taprpc.FetchAssetMetaRequest{
				Asset: &taprpc.FetchAssetMetaRequest_AssetId{AssetId: assetID},
			})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (n *network) sendToAlice(ctx context.Context, assetID []byte) error {
	alice, edge := n.nodes["alice"], n.nodes["edge"]
	addr, err := alice.tap.NewAddr(ctx, &taprpc.NewAddrRequest{
		AssetId: assetID, Amt: aliceUnits,
		ProofCourierAddr: "universerpc://" + edge.rpcAddr(),
	})
	if err != nil {
		return fmt.Errorf("alice's address: %w", err)
	}
	n.say("edge sends %d units to alice on chain", uint64(aliceUnits))
	if _, err := edge.tap.SendAsset(ctx, &taprpc.SendAssetRequest{TapAddrs: []string{addr.Encoded}}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return poll(ctx, "alice to receive the stablecoin", func() error {
		if err := n.mineIfMempool(); err != nil {
			return err
		}
		got, err := assetBalance(ctx, alice, assetID)
		if err != nil {
			return err
		}
		if got < aliceUnits {
			return fmt.Errorf("has %d units", got)
		}
		return nil
	})
}

func assetBalance(ctx context.Context, nd *node, assetID []byte) (uint64, error) {
	assets, err := nd.tap.ListAssets(ctx, &taprpc.ListAssetRequest{})
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, a := range assets.Assets {
		if a.AssetGenesis != nil && bytes.Equal(a.AssetGenesis.AssetId, assetID) {
			sum += a.Amount
		}
	}
	return sum, nil
}

func pubkeyBytes(nd *node) []byte {
	b, _ := hex.DecodeString(nd.pubkey)
	return b
}

func (n *network) openChannels(ctx context.Context, assetID []byte) error {
	alice, bob, edge, merchant := n.nodes["alice"], n.nodes["bob"], n.nodes["edge"], n.nodes["merchant"]
	for _, p := range [][2]*node{{alice, edge}, {bob, edge}, {edge, merchant}} {
		if err := n.ensureConnected(ctx, p[0], p[1]); err != nil {
			return err
		}
	}
	n.say("alice funds an asset channel to edge (%d units)", uint64(aliceUnits))
	if _, err := alice.tch.FundChannel(ctx, &tapchannelrpc.FundChannelRequest{
		AssetAmount: aliceUnits, AssetId: assetID, PeerPubkey: pubkeyBytes(edge),
		FeeRateSatPerVbyte: 5, PushSat: assetChannelPushSat,
	}); err != nil {
		return fmt.Errorf("alice-edge asset channel: %w", err)
	}
	n.say("edge funds an asset channel to merchant (%d units)", uint64(merchantChUnits))
	if _, err := edge.tch.FundChannel(ctx, &tapchannelrpc.FundChannelRequest{
		AssetAmount: merchantChUnits, AssetId: assetID, PeerPubkey: pubkeyBytes(merchant),
		FeeRateSatPerVbyte: 5,
	}); err != nil {
		return fmt.Errorf("edge-merchant asset channel: %w", err)
	}
	n.say("bob opens a sats channel to edge, edge one to merchant (%d sat each)", satsChannel)
	for _, p := range [][2]*node{{bob, edge}, {edge, merchant}} {
		if _, err := p[0].ln.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
			NodePubkey: pubkeyBytes(p[1]), LocalFundingAmount: satsChannel, SatPerVbyte: 5,
		}); err != nil {
			return fmt.Errorf("%s-%s sats channel: %w", p[0].name, p[1].name, err)
		}
	}
	n.say("confirming the four channels (6 blocks)")
	if err := n.mine(ctx, 6); err != nil {
		return err
	}
	want := map[string]int{"alice": 1, "bob": 1, "edge": 4, "merchant": 2}
	for _, name := range names {
		nd := n.nodes[name]
		if err := poll(ctx, fmt.Sprintf("%s's %d channels to be active", name, want[name]), func() error {
			ch, err := nd.ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
			if err != nil {
				return err
			}
			if len(ch.Channels) < want[name] {
				return fmt.Errorf("%d active", len(ch.Channels))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// The sats channels are public: bob and alice must know edge's policy on edge-merchant to
	// pay merchant's sats invoices.
	if err := n.mine(ctx, 1); err != nil {
		return err
	}
	for _, payer := range []*node{alice, bob} {
		if err := poll(ctx, payer.name+" to learn the edge-merchant sats channel", func() error {
			g, err := payer.ln.DescribeGraph(ctx, &lnrpc.ChannelGraphRequest{})
			if err != nil {
				return err
			}
			for _, e := range g.Edges {
				// Routing to merchant over this channel needs edge's policy for it.
				if e.Node1Pub == edge.pubkey && e.Node2Pub == merchant.pubkey && e.Node1Policy != nil {
					return nil
				}
				if e.Node2Pub == edge.pubkey && e.Node1Pub == merchant.pubkey && e.Node2Policy != nil {
					return nil
				}
			}
			var seen []string
			for _, e := range g.Edges {
				seen = append(seen, fmt.Sprintf("%.8s-%.8s(policies %t,%t)", e.Node1Pub, e.Node2Pub, e.Node1Policy != nil, e.Node2Policy != nil))
			}
			return fmt.Errorf("edge %.8s, merchant %.8s; known: %s", edge.pubkey, merchant.pubkey, strings.Join(seen, " "))
		}); err != nil {
			return err
		}
	}
	return nil
}

func (n *network) writeNetworkFile(assetID []byte) error {
	var b strings.Builder
	edge := n.nodes["edge"]
	fmt.Fprintf(&b, "# Written by integration/regtest/up.sh: a real regtest network (btcd + tapd-integrated).\n")
	fmt.Fprintf(&b, "# The price oracle is tapd's built-in mock on every node (USD %d per BTC), so no\n# oracle endpoint is listed.\n", n.usdPerBTC)
	fmt.Fprintf(&b, "network = \"regtest\"\n")
	fmt.Fprintf(&b, "edge_pubkey = %q\n", edge.pubkey)
	fmt.Fprintf(&b, "asset_id = %q\n", hex.EncodeToString(assetID))
	fmt.Fprintf(&b, "asset_name = \"USD\"\ndecimal_display = 6\n")
	for _, name := range names {
		nd := n.nodes[name]
		fmt.Fprintf(&b, "\n[[nodes]]\nname = %q\npubkey = %q\n", name, nd.pubkey)
		fmt.Fprintf(&b, "lnd_endpoint = %q\ntapd_endpoint = %q\n", nd.rpcAddr(), nd.rpcAddr())
		fmt.Fprintf(&b, "rest_endpoint = %q\n", nd.restAddr())
		fmt.Fprintf(&b, "tls_cert_path = %q\n", nd.tlsCert())
		fmt.Fprintf(&b, "lnd_macaroon_path = %q\n", nd.lndMacaroon("admin"))
		fmt.Fprintf(&b, "lnd_invoice_macaroon_path = %q\n", nd.lndMacaroon("invoice"))
		fmt.Fprintf(&b, "lnd_readonly_macaroon_path = %q\n", nd.lndMacaroon("readonly"))
		fmt.Fprintf(&b, "tapd_macaroon_path = %q\n", nd.tapdMacaroon())
	}
	tmp := filepath.Join(n.dir, "network.toml.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(n.dir, "network.toml"))
}

// permanent stops poll at once.
type permanent struct{ error }

// poll retries f every 250 ms until it succeeds or ctx ends; it says what it is waiting for
// every 15 s.
func poll(ctx context.Context, what string, f func() error) error {
	last := time.Now()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		if time.Since(last) > 15*time.Second {
			fmt.Printf("regtest: still waiting for %s (%v)\n", what, err)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for %s: %v", what, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
