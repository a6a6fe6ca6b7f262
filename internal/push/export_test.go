package push

import "time"

// SetAgentStartTimeout shortens how long a test waits for an agent that
// does not start; users have no such knob.
func SetAgentStartTimeout(o *Options, d time.Duration) { o.agentStart = d }
