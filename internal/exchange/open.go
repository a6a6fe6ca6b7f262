package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Config says which etcd to use and which namespace in it.
type Config struct {
	// Endpoints of an external cluster; empty starts an embedded member.
	Endpoints []string
	// TLS client certificate for an external cluster (all optional).
	CertFile, KeyFile, CAFile string
	// DataDir of the embedded member (default ~/.herd/etcd).
	DataDir string
	// Cluster is the namespace; see ClusterName.
	Cluster string
	// StartTimeout bounds the embedded member's start (default 30s).
	StartTimeout time.Duration
}

var clusterRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// ClusterName is the namespace for an inventory when the user names none:
// the inventory file's base name and a hash of its absolute path, so two
// fleets whose inventories are both called hosts.toml stay apart.
func ClusterName(inventoryPath string) string {
	if inventoryPath == "" {
		return "default"
	}
	abs, err := filepath.Abs(inventoryPath)
	if err != nil {
		abs = inventoryPath
	}
	sum := sha256.Sum256([]byte(abs))
	base := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	base = regexp.MustCompile(`[^A-Za-z0-9_.-]`).ReplaceAllString(base, "_")
	name := base + "-" + hex.EncodeToString(sum[:4])
	if !clusterRE.MatchString(name) {
		name = "inv-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// Open connects to the store; with no endpoints it first starts an
// embedded member under DataDir.
func Open(ctx context.Context, c Config) (*Store, error) {
	if c.Cluster == "" {
		c.Cluster = "default"
	}
	if !clusterRE.MatchString(c.Cluster) {
		return nil, fmt.Errorf("exchange: cluster name %q: use letters, digits, '_', '.', '-' (at most 100)", c.Cluster)
	}
	s := &Store{prefix: "/herd/" + c.Cluster + "/"}
	endpoints := c.Endpoints
	if len(endpoints) == 0 {
		start := time.Now()
		m, err := startMember(c)
		if err != nil {
			return nil, err
		}
		s.member, s.Embedded, s.StartTime = m, true, time.Since(start)
		endpoints = []string{m.endpoint}
	}
	cc := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{}}
	if c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" {
		tlsInfo := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.CAFile}
		tc, err := tlsInfo.ClientConfig()
		if err != nil {
			s.closeMember()
			return nil, fmt.Errorf("exchange: TLS client configuration: %w", err)
		}
		cc.TLS = tc
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		s.closeMember()
		return nil, fmt.Errorf("exchange: etcd client: %w", err)
	}
	s.cli = cli
	// Fail now, with the endpoints named, rather than at the first write.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, s.prefix+"probe"); err != nil {
		s.Close()
		return nil, fmt.Errorf("exchange: etcd at %s does not answer: %w", strings.Join(endpoints, ","), err)
	}
	return s, nil
}

func (s *Store) closeMember() {
	if s.member != nil {
		s.member.stop()
	}
}

// member is an embedded single-node etcd.
type member struct {
	e        *embed.Etcd
	endpoint string
}

func (m *member) stop() {
	m.e.Close()
	<-m.e.Server.StopNotify()
}

// DefaultDataDir is ~/.herd/etcd.
func DefaultDataDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("exchange: no home directory for the embedded etcd (give a data directory): %w", err)
	}
	return filepath.Join(home, ".herd", "etcd"), nil
}

// startMember starts a single-member etcd whose clients reach it only over
// a unix socket inside a 0700 directory: no other local user can talk to
// it. The peer port (which etcd needs even alone) listens on 127.0.0.1.
func startMember(c Config) (*member, error) {
	dir := c.DataDir
	if dir == "" {
		var err error
		if dir, err = DefaultDataDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	sock := filepath.Join(dir, "client.sock")
	if len(sock) > 100 {
		return nil, fmt.Errorf("exchange: etcd directory %s: path too long for a unix socket", dir)
	}
	_ = os.Remove(sock) // a stale socket from a killed controller; the data lock below guards a live one
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "herd"
	cfg.Dir = filepath.Join(dir, "data")
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"/dev/null"}
	cu, _ := url.Parse("unix://" + sock)
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("exchange: starting embedded etcd in %s: %w", dir, err)
	}
	timeout := c.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("exchange: embedded etcd in %s: %w", dir, err)
	case <-time.After(timeout):
		e.Close()
		return nil, errors.New("exchange: embedded etcd did not start within " + timeout.String())
	}
	return &member{e: e, endpoint: "unix://" + sock}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("exchange: no free loopback port for etcd's peer listener: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
