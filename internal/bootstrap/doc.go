// Package bootstrap is how an agent comes to run on a target: every piece
// of it but the agent's own checks lives here.
//
//   - script.go: the /bin/sh snippet run over the login (Script) that
//     checks the cache directory is safe, execs the cached agent by hash,
//     or asks for it ("HERD-NEED gzip|raw") and installs it atomically;
//     the exit codes and markers it shares with the agent; BrokerCommand,
//     the same snippet starting the become broker.
//   - binary.go: the payload, the agent executable read, hashed and
//     gzipped once per run (Binary): from the controller (Self) or, on a
//     trusted relay, from the running agent (Running).
//   - start.go: the controller side (Start), run by push for its targets
//     and by a trusted relay for its children: it runs the snippet over any
//     transport.Session, sends the payload when asked, retries once after
//     a corrupt cache, and turns the exit codes into one clear error.
//
// The other half runs in the agent (package agent, verify.go): VerifySelf
// checks the running file against --hash (exit ExitAgentCorrupt), and
// VerifyUnwatched refuses a wrapped, traced or tapped agent (exit
// ExitAgentWatched, line RefusedPrefix) before it says its first word.
package bootstrap
