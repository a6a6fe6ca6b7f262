//go:build !herd_noembed

package exchange

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
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

// startMember starts a single-member etcd that listens on nothing another
// local user can reach: clients and the peer listener (which etcd opens
// even alone) are unix sockets (0600) inside a 0700 directory of ours, and
// metrics are off. No TCP port at all (member_test.go attacks this).
func startMember(c Config) (*member, error) {
	dir := c.DataDir
	if dir == "" {
		var err error
		if dir, err = DefaultDataDir(); err != nil {
			return nil, err
		}
	}
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "client.sock")
	if len(sock) > 100 {
		return nil, fmt.Errorf("exchange: etcd directory %s: path too long for a unix socket", dir)
	}
	_ = os.Remove(sock) // a stale socket from a killed controller; the data lock below guards a live one
	peerSock := filepath.Join(dir, "peer.sock")
	_ = os.Remove(peerSock)
	cfg := embed.NewConfig()
	cfg.Name = "herd"
	cfg.Dir = filepath.Join(dir, "data")
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"/dev/null"}
	cu, _ := url.Parse("unix://" + sock)
	// etcd listens on a unix peer URL's Host (not its Path), so the
	// absolute path goes there; the member never dials a peer.
	// The advertised URL (never dialled by a lone member) keeps the
	// parseable form.
	pu := url.URL{Scheme: "unix", Host: peerSock}
	pa := url.URL{Scheme: "unix", Path: peerSock}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pa}
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
	for _, p := range []string{sock, peerSock} {
		// The directory already keeps others out; the sockets say so too.
		if err := os.Chmod(p, 0o600); err != nil {
			e.Close()
			return nil, fmt.Errorf("exchange: %w", err)
		}
	}
	return &member{e: e, endpoint: "unix://" + sock}, nil
}

// privateDir makes dir (and missing parents) and insists that it is a real
// directory of this user, mode 0700: a symlink or a directory someone else
// owns could hand the store to them.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("exchange: etcd directory %s is not a directory owned by this user; refusing it", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	return nil
}
