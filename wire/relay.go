package wire

// Relay messages serve herd_via_mode = "trusted" (package relay): a parent
// agent (a bastion, a rack top) opens SSH connections to its children and
// carries their agents' streams, so the agent binary crosses the
// controller's link once per parent. Private keys stay on the controller:
// the parent asks it to check each child's host key and to sign each
// authentication, which the controller does only for the user and keys it
// named for that child. ID names the child connection, chosen by the
// controller, unique per parent. The default mode uses none of these.

// RelayOpen asks the parent to connect to a child and start its agent from
// the parent's own cached binary. Password is only for children that need
// password authentication; the parent keeps it in memory for the dial.
type RelayOpen struct {
	ID       uint64   `json:"id"`
	Name     string   `json:"name"` // inventory name, for messages
	Addr     string   `json:"addr"` // host:port as seen from the parent
	User     string   `json:"user"`
	Keys     [][]byte `json:"keys,omitempty"` // public keys (SSH wire format) the controller can sign with
	Password string   `json:"password,omitempty"`
	AgentDir string   `json:"agent_dir,omitempty"`
	// TimeoutMS bounds connect, handshake and agent start.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Broker starts the become broker (package become) instead of the
	// agent; the controller then negotiates with it over the stream.
	Broker bool `json:"broker,omitempty"`
	// KeepAliveMS is the interval of the parent's keepalives to the child
	// (the controller's own setting); 0 lets the parent choose.
	KeepAliveMS int64 `json:"keepalive_ms,omitempty"`
	// HostKeyAlgorithms are the host key types the controller's
	// known_hosts has for the child: the parent offers only these.
	HostKeyAlgorithms []string `json:"host_key_algorithms,omitempty"`
}

// RelayAsk is the parent asking the controller, during a child's SSH
// handshake, to check a host key (What "hostkey", Key is the server's key)
// or to sign (What "sign", Key is one of RelayOpen.Keys, Data is what to
// sign).
type RelayAsk struct {
	ID        uint64 `json:"id"`
	Seq       uint64 `json:"seq"`
	What      string `json:"what"`
	Key       []byte `json:"key,omitempty"`
	Data      []byte `json:"data,omitempty"`
	Algorithm string `json:"algorithm,omitempty"`
}

// RelayAnswer answers the RelayAsk with the same ID and Seq. Signature is
// an ssh.Signature in wire form; Error refuses.
type RelayAnswer struct {
	ID        uint64 `json:"id"`
	Seq       uint64 `json:"seq"`
	Signature []byte `json:"signature,omitempty"`
	Error     string `json:"error,omitempty"`
}

// RelayData carries bytes of a child agent's stream: controller to parent
// is the child's stdin, parent to controller its stdout. EOF closes the
// direction. Ack returns credit for the other direction: the sender of
// Data may have at most RelayWindow bytes not yet acknowledged, so a child
// flooding its output is slowed down to its reader's pace rather than
// buffered without bound on the parent and the controller.
type RelayData struct {
	ID   uint64 `json:"id"`
	Data []byte `json:"data,omitempty"`
	EOF  bool   `json:"eof,omitempty"`
	Ack  int64  `json:"ack,omitempty"`
}

// RelayWindow is the credit each side of a child stream starts with; a
// receiver holding more than this for one child fails that child.
const RelayWindow = 1 << 20

// RelayAckEvery batches acknowledgements: well under the window, so a
// sender never waits on bytes already read.
const RelayAckEvery = RelayWindow / 4

// RelayClose ends a child connection: from the controller, hang up; from
// the parent, the child ended or could not be reached (Error says why).
type RelayClose struct {
	ID    uint64 `json:"id"`
	Error string `json:"error,omitempty"`
}

func (RelayOpen) Type() Type   { return TypeRelayOpen }
func (RelayAsk) Type() Type    { return TypeRelayAsk }
func (RelayAnswer) Type() Type { return TypeRelayAnswer }
func (RelayData) Type() Type   { return TypeRelayData }
func (RelayClose) Type() Type  { return TypeRelayClose }
