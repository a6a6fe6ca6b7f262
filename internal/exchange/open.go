package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
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
	cc := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
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
