// Package bench measures herd against Ansible and Ansible+Mitogen on lab
// hosts: the same 100 sequential "hostname" steps, on one host and on
// twenty, on the LAN and behind a 180 ms round trip. cmd/herd-bench drives
// it; the numbers go into the README, so the setup lives in code, not in
// somebody's shell history.
package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Steps is the number of exec steps per run: enough that per-step costs
// (round trips, process starts) dominate connection set-up.
const Steps = 100

// WANRTT is the round trip of the "wan" scenarios, made by a latency proxy
// that delays each direction by half of it.
const WANRTT = 180 * time.Millisecond

// Scenario is one shape of run: how many hosts and how far away.
type Scenario struct {
	Name  string        `json:"name"`
	Hosts int           `json:"hosts"`
	RTT   time.Duration `json:"rtt_ns"` // 0: the lab's own link (LAN)
}

// Scenarios are the ones the issue asks for, in the order they print.
var Scenarios = []Scenario{
	{Name: "lan1", Hosts: 1},
	{Name: "lan20", Hosts: 20},
	{Name: "wan1", Hosts: 1, RTT: WANRTT},
	{Name: "wan20", Hosts: 20, RTT: WANRTT},
}

// Tools are the contenders, herd first.
var Tools = []string{"herd", "ansible", "mitogen"}

// ParseScenarios reads a comma-separated list of scenario names ("" or
// "all" is every scenario).
func ParseScenarios(s string) ([]Scenario, error) {
	names, err := parseList(s, "scenario", scenarioNames())
	if err != nil {
		return nil, err
	}
	var out []Scenario
	for _, sc := range Scenarios {
		if slices.Contains(names, sc.Name) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// ParseTools reads a comma-separated list of tools ("" or "all" is every
// tool), returned in the order of Tools.
func ParseTools(s string) ([]string, error) {
	names, err := parseList(s, "tool", Tools)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range Tools {
		if slices.Contains(names, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func scenarioNames() []string {
	var out []string
	for _, sc := range Scenarios {
		out = append(out, sc.Name)
	}
	return out
}

func parseList(s, what string, known []string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return known, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(known, p) {
			return nil, fmt.Errorf("unknown %s %q (known: %s)", what, p, strings.Join(known, ", "))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s named in %q", what, s)
	}
	return out, nil
}
