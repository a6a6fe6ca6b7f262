package push

import "github.com/herd-project/herd/internal/bootstrap"

// Binary is the agent executable push installs on targets (see package
// bootstrap, which owns reading, hashing and compressing it).
type Binary = bootstrap.Binary

// SelfBinary returns the running executable as the agent binary.
func SelfBinary() (*Binary, error) { return bootstrap.Self() }
