package main

import (
	"runtime/debug"

	"github.com/herd-project/herd/internal/build"
)

// version says which build this is (build.Version).
func version() string { return build.Version() }

func formatVersion(bi *debug.BuildInfo) string { return build.FormatVersion(bi) }
