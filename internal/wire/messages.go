package wire

import (
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/plan"
)

// Version is the protocol version both sides announce in their Hello. Bump it
// whenever a message changes meaning; adding optional fields does not need a
// bump because unknown JSON fields are ignored.
const Version = 1

// Type identifies a message on the wire. The values are part of the protocol:
// never renumber, only append.
type Type byte

const (
	TypeHello       Type = 1
	TypeRunPlan     Type = 2
	TypeEvent       Type = 3
	TypeDone        Type = 4
	TypeError       Type = 5
	TypeShutdown    Type = 6
	TypeFileRequest Type = 7
	TypeFileChunk   Type = 8
	// Relay (package agent, relay.go): a parent agent connects to children.
	TypeRelayOpen   Type = 9
	TypeRelayAsk    Type = 10
	TypeRelayAnswer Type = 11
	TypeRelayData   Type = 12
	TypeRelayClose  Type = 13
	// Watch mode (herd watch): see Watch.
	TypeWatch Type = 14
	TypePing  Type = 15
)

// String names the type for error messages.
func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeRunPlan:
		return "run_plan"
	case TypeEvent:
		return "event"
	case TypeDone:
		return "done"
	case TypeError:
		return "error"
	case TypeShutdown:
		return "shutdown"
	case TypeFileRequest:
		return "file_request"
	case TypeFileChunk:
		return "file_chunk"
	case TypeRelayOpen:
		return "relay_open"
	case TypeRelayAsk:
		return "relay_ask"
	case TypeRelayAnswer:
		return "relay_answer"
	case TypeRelayData:
		return "relay_data"
	case TypeRelayClose:
		return "relay_close"
	case TypeWatch:
		return "watch"
	case TypePing:
		return "ping"
	}
	return "unknown"
}

// newMessage returns an empty message of type t, or nil when t is unknown, so
// the decoder never builds something the protocol does not define.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeRunPlan:
		return &RunPlan{}
	case TypeEvent:
		return &Event{}
	case TypeDone:
		return &Done{}
	case TypeError:
		return &Error{}
	case TypeShutdown:
		return &Shutdown{}
	case TypeFileRequest:
		return &FileRequest{}
	case TypeFileChunk:
		return &FileChunk{}
	case TypeRelayOpen:
		return &RelayOpen{}
	case TypeRelayAsk:
		return &RelayAsk{}
	case TypeRelayAnswer:
		return &RelayAnswer{}
	case TypeRelayData:
		return &RelayData{}
	case TypeRelayClose:
		return &RelayClose{}
	case TypeWatch:
		return &Watch{}
	case TypePing:
		return &Ping{}
	}
	return nil
}

// Message is anything that can be sent over a Conn. Recv always returns
// pointers (*Hello, *RunPlan, …); Send accepts values or pointers.
type Message interface {
	Type() Type
}

// Hello is the first frame each side sends. The controller fills only
// Version; the agent adds its binary hash, facts and pid.
type Hello struct {
	Version   int         `json:"version"`
	AgentHash string      `json:"agent_hash,omitempty"`
	Facts     facts.Facts `json:"facts"`
	Pid       int         `json:"pid,omitempty"`
}

// RunPlan asks the agent to run one role's plan.
type RunPlan struct {
	Plan     *plan.Plan `json:"plan"`
	Check    bool       `json:"check,omitempty"`
	Parallel int        `json:"parallel,omitempty"`
	// Lock says who is applying and how long to wait for the host's run
	// lock (package agent) before failing; nil waits the default and names
	// no holder.
	Lock *RunLock `json:"lock,omitempty"`
}

// DefaultLockWait is how long a run waits for another run's lock on a host
// when the controller does not say.
const DefaultLockWait = 10 * time.Second

// RunLock identifies the controller's run to the agent's run lock: the
// holder writes User, Host and Pid into the lock file, and a run that finds
// the lock taken names them. Run is the same for every agent of one
// controller run, so two agents of that run sharing a state directory (an
// SSH login as root and a become to root) do not wait for each other.
type RunLock struct {
	Wait time.Duration `json:"wait"`
	User string        `json:"user,omitempty"`
	Host string        `json:"host,omitempty"`
	Pid  int           `json:"pid,omitempty"`
	Run  string        `json:"run,omitempty"`
}

// Event carries one engine event back to the controller.
type Event struct {
	event.Event
}

// Done ends a RunPlan: the recap of the run and whether it failed. Error is
// set when the plan could not run at all (e.g. it failed validation).
type Done struct {
	// Role is set in watch mode, where several roles' runs and drift
	// repairs share the connection.
	Role string `json:"role,omitempty"`
	// Drift: this run was a drift repair the agent started on its own.
	Drift  bool         `json:"drift,omitempty"`
	Counts event.Counts `json:"counts"`
	Failed bool         `json:"failed,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// Error reports a protocol-level failure; the sender closes the connection
// after it.
type Error struct {
	Msg string `json:"msg"`
}

// Shutdown asks the agent to exit cleanly.
type Shutdown struct{}

// FileRequest asks the controller for a blob by content hash, starting at
// Offset, for files too large to travel inline in a plan.
type FileRequest struct {
	Hash   string `json:"hash"`
	Offset int64  `json:"offset"`
	// ID is chosen by the agent and echoed in every chunk of the answer,
	// so that several requests (e.g. for the files of a tree) can be in
	// flight at once.
	ID uint64 `json:"id,omitempty"`
	// Role names the plan the file belongs to, in watch mode (where the
	// agent holds every role's plan at once).
	Role string `json:"role,omitempty"`
}

// FileChunk answers a FileRequest; EOF marks the last chunk.
type FileChunk struct {
	Hash   string `json:"hash"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data,omitempty"`
	EOF    bool   `json:"eof,omitempty"`
	ID     uint64 `json:"id,omitempty"`
	// Size is the whole file's size, in every chunk.
	Size int64 `json:"size,omitempty"`
	// Error ends the answer without content: the controller refused the
	// request or could not read the file.
	Error string `json:"error,omitempty"`
	// Compress asks the sender's Conn to compress this chunk's frame (set
	// for content that compresses); it is not itself transmitted.
	Compress bool `json:"-"`
}

func (Hello) Type() Type       { return TypeHello }
func (RunPlan) Type() Type     { return TypeRunPlan }
func (Event) Type() Type       { return TypeEvent }
func (Done) Type() Type        { return TypeDone }
func (Error) Type() Type       { return TypeError }
func (Shutdown) Type() Type    { return TypeShutdown }
func (FileRequest) Type() Type { return TypeFileRequest }
func (FileChunk) Type() Type   { return TypeFileChunk }
func (Watch) Type() Type       { return TypeWatch }

// Watch (herd watch) gives the agent the whole current plan of one role,
// which it keeps until the next Watch for that role, and says which
// resources to run now: All, or the IDs in Run (the agent adds what they
// notify and the values they need, plan.Subset). A resource missing from
// the new plan is dropped: no longer watched, nothing deleted. An empty
// plan forgets the role. The agent answers each Watch with a Done for the
// role, then keeps watching the plan's resources and repairs drift on its
// own, reporting each repair as events and a Done with Drift set.
type Watch struct {
	Plan     *plan.Plan `json:"plan"`
	All      bool       `json:"all,omitempty"`
	Run      []string   `json:"run,omitempty"`
	Parallel int        `json:"parallel,omitempty"`
	// Poll is how often resources that cannot be watched with inotify
	// (packages, services, users, groups) are re-checked; 0 never.
	Poll time.Duration `json:"poll,omitempty"`
	Lock *RunLock      `json:"lock,omitempty"`
	// Reuse lists file contents (blob hashes) Plan leaves out because the
	// role's previous plan on this agent carries them.
	Reuse []string `json:"reuse,omitempty"`
	// Silence is how long the agent waits without hearing anything from
	// the controller (it pings more often) before taking it for gone, as if
	// its stream had ended: a controller behind a cut link cannot close
	// the stream, and an orphaned agent would go on repairing with an old
	// plan. 0: wait for the stream to end.
	Silence time.Duration `json:"silence,omitempty"`
}

// Ping keeps a watch's agents sure their controller is still there.
type Ping struct{}

func (Ping) Type() Type { return TypePing }
