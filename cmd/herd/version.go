package main

import "github.com/herd-project/herd/internal/build"

// version says which build this is (build.Version).
func version() string { return build.Version() }
