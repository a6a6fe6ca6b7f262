package resource

import (
	"context"
	"fmt"
	"strconv"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "group",
		Doc: "A local group in /etc/group, managed with groupadd, groupmod and groupdel. " +
			"system only matters when the group is created.",
		Params: []Param{
			{Name: "gid", Type: Int, Doc: "numeric group id (default: keep, or the next free one when created)"},
			{Name: "system", Type: Bool, Doc: "create as a system group (gid from the system range)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
		},
		Factory: newGroup,
	})
}

type group struct {
	name    string
	present bool
	gid     int // -1: not managed
	system  bool
	etc     string
}

func newGroup(name string, p plan.Params, _ map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("group %s: %w", name, err) }
	if err := validAccountName("group", name); err != nil {
		return nil, err
	}
	g := &group{name: name, gid: -1, etc: etcDir}
	var err error
	if g.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	gid, err := p.Int("gid", -1)
	if err != nil {
		return fail(err)
	}
	if p.Has("gid") && (gid < 0 || gid > 1<<31-1) {
		return fail(fmt.Errorf("gid %d is out of range", gid))
	}
	g.gid = int(gid)
	if g.system, err = p.Bool("system", false); err != nil {
		return fail(err)
	}
	if !g.present {
		if err := absentRejects(p, "gid", "system"); err != nil {
			return fail(err)
		}
	}
	return g, nil
}

// reconcile compares the group file with the wanted state and returns the
// commands that would reconcile them.
func (g *group) reconcile() (Change, []tool, error) {
	a, err := readAccounts(g.etc)
	if err != nil {
		return Change{}, nil, fmt.Errorf("group %s: %w", g.name, err)
	}
	cur, exists := a.group(g.name)
	switch {
	case !g.present && !exists:
		return Change{}, nil, nil
	case !g.present:
		return Change{Changed: true, Summary: "remove"}, []tool{{argv: []string{"groupdel", g.name}, hint: shadowHint}}, nil
	case !exists:
		if g.gid >= 0 {
			if other, taken := a.groupByID(g.gid); taken {
				return Change{}, nil, fmt.Errorf("group %s: gid %d is already used by group %s", g.name, g.gid, other.name)
			}
		}
		return Change{Changed: true, Summary: "create"}, []tool{{argv: groupaddArgs(g.name, g.gid, g.system), hint: shadowHint}}, nil
	case g.gid >= 0 && cur.gid != g.gid:
		if other, taken := a.groupByID(g.gid); taken {
			return Change{}, nil, fmt.Errorf("group %s: cannot change gid to %d: already used by group %s", g.name, g.gid, other.name)
		}
		c := Change{Changed: true, Summary: fmt.Sprintf("gid %d→%d", cur.gid, g.gid)}
		return c, []tool{{argv: []string{"groupmod", "-g", strconv.Itoa(g.gid), g.name}, hint: shadowHint}}, nil
	}
	return Change{}, nil, nil
}

func groupaddArgs(name string, gid int, system bool) []string {
	argv := []string{"groupadd"}
	if gid >= 0 {
		argv = append(argv, "-g", strconv.Itoa(gid))
	}
	if system {
		argv = append(argv, "-r")
	}
	return append(argv, name)
}

func (g *group) Check(ctx context.Context, env *Env) (Change, error) {
	c, _, err := g.reconcile()
	return c, err
}

func (g *group) Apply(ctx context.Context, env *Env) (Change, error) {
	c, tools, err := g.reconcile()
	if err != nil {
		return c, err
	}
	if err := runAll(ctx, &c, tools...); err != nil {
		return c, fmt.Errorf("group %s: %w", g.name, err)
	}
	return c, nil
}
