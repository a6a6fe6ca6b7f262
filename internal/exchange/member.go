//go:build !herd_noembed

package exchange

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

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
