package inventory

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseYAMLFile reads an Ansible YAML inventory:
//
//	all:
//	  hosts: {web1: {ansible_host: 10.0.0.1}}
//	  vars: {ntp: pool.ntp.org}
//	  children:
//	    web: {hosts: {"web[01:03]": null}}
func (b *builder) parseYAMLFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return b.parseYAML(file, data)
}

func (b *builder) parseYAML(file string, data []byte) error {
	data, err := b.vault.decryptFile(file, data)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return yamlError(file, err)
	}
	if err := b.vault.decryptNodes(file, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // empty inventory
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return &ParseError{File: file, Line: root.Line, Msg: "an inventory must be a mapping of group names (e.g. all:)"}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if err := b.yamlGroup(file, root.Content[i].Value, root.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) yamlGroup(file, name string, body *yaml.Node) error {
	if err := checkName("group", name); err != nil {
		return &ParseError{File: file, Line: body.Line, Msg: err.Error()}
	}
	b.group(name)
	if isNull(body) {
		return nil
	}
	if body.Kind != yaml.MappingNode {
		return &ParseError{File: file, Line: body.Line, Msg: fmt.Sprintf("group %s: want a mapping with hosts, vars or children", name)}
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		key, val := body.Content[i], body.Content[i+1]
		if isNull(val) {
			continue
		}
		switch key.Value {
		case "hosts":
			if val.Kind != yaml.MappingNode {
				return &ParseError{File: file, Line: val.Line, Msg: fmt.Sprintf("group %s: hosts must be a mapping of host names", name)}
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				hk, hv := val.Content[j], val.Content[j+1]
				if err := checkName("host", hk.Value); err != nil {
					return &ParseError{File: file, Line: hk.Line, Msg: err.Error()}
				}
				vars, err := yamlVars(file, hv)
				if err != nil {
					return err
				}
				pattern, port, hasPort := splitHostPort(hk.Value)
				names, err := expandHosts(pattern)
				if err != nil {
					return &ParseError{File: file, Line: hk.Line, Msg: err.Error()}
				}
				for _, n := range names {
					b.addHostPort(name, n, port, hasPort, vars)
				}
			}
		case "vars":
			vars, err := yamlVars(file, val)
			if err != nil {
				return err
			}
			merge(b.group(name).vars, vars)
		case "children":
			if val.Kind != yaml.MappingNode {
				return &ParseError{File: file, Line: val.Line, Msg: fmt.Sprintf("group %s: children must be a mapping of group names", name)}
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				child := val.Content[j].Value
				if err := b.addChild(name, child); err != nil {
					return &ParseError{File: file, Line: val.Content[j].Line, Msg: err.Error()}
				}
				if err := b.yamlGroup(file, child, val.Content[j+1]); err != nil {
					return err
				}
			}
		default:
			return &ParseError{File: file, Line: key.Line, Msg: fmt.Sprintf("group %s: unexpected key %q (want hosts, vars or children)", name, key.Value)}
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// yamlVars decodes a mapping of variables; null means none.
func yamlVars(file string, n *yaml.Node) (map[string]any, error) {
	if isNull(n) {
		return map[string]any{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, &ParseError{File: file, Line: n.Line, Msg: "variables must be a mapping of names to values"}
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, yamlError(file, err)
	}
	m, _ := normalize(v).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// decodeVarsFile reads a group_vars/host_vars file: YAML (or JSON) with a
// mapping at the top; an empty file has no vars.
func decodeVarsFile(file string, data []byte, v *Vault) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, err)
	}
	if err := v.decryptNodes(file, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return map[string]any{}, nil
	}
	return yamlVars(file, doc.Content[0])
}

// normalize turns decoded YAML/JSON into the shapes the rest of herd
// expects: map[string]any with string keys, []any, int, float64, bool,
// string and nil.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	case int64:
		return int(x)
	case uint64:
		if x <= 1<<62 {
			return int(x)
		}
		return float64(x)
	}
	return v
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlError rewrites "yaml: line 3: msg" into "file:3: msg".
func yamlError(file string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil && m[0] == 0 {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		return &ParseError{File: file, Line: line, Msg: msg[m[1]:]}
	}
	return &ParseError{File: file, Msg: msg}
}
