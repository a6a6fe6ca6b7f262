package push

import "time"

// SetAgentStartTimeout shortens how long a test waits for an agent that
// does not start; users have no such knob.
func SetAgentStartTimeout(o *Options, d time.Duration) { o.agentStart = d }

// SetAgentUploads narrows how many agent uploads run at once, so that a
// test with a few hosts makes them take turns.
func SetAgentUploads(o *Options, n int) { o.uploads = n }
