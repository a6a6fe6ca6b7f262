// Package examples ships the example policies; the demo is embedded in the
// herd binary so `herd demo` works on a fresh machine with nothing else.
package examples

import "embed"

// Demo is the policy run by `herd demo`: it writes only under the directory
// given as the var "root".
//
//go:embed demo
var Demo embed.FS
