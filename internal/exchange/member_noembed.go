//go:build herd_noembed

package exchange

import "errors"

// member is absent from a herd built with -tags herd_noembed (26 MB
// instead of 40 MB): such a herd only uses an external cluster (--etcd).
type member struct{ endpoint string }

func (m *member) stop() {}

func startMember(c Config) (*member, error) {
	return nil, errors.New("exchange: this herd was built without the embedded etcd (herd_noembed); give --etcd endpoints")
}

// DefaultDataDir is unused without the embedded member.
func DefaultDataDir() (string, error) { return "", nil }
