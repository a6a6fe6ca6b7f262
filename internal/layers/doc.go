// Package layers holds no code: its test enforces herd's one layering rule,
// that the target side (what runs on managed machines) never imports the
// controller side. The agent binary is the controller binary, but a target
// must not need, or be able to reach, code that plans policies, reads
// inventories or serves the controller's files.
package layers
