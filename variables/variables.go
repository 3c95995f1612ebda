// Package variables resolves a deployment's variables as Octopus does: a
// variable has values, each with a scope (environments, machines, roles,
// actions, channels, tenant tags, processes); for an action on a target
// the value whose scope matches and is the most specific wins. Names are
// case-insensitive. Templates (script bodies, action properties) refer to
// variables as #{Name} (see Evaluate).
package variables

import (
	"slices"
	"strings"
)

// Variable is one value of a variable, in Octopus's shape (the Variable
// resource of a variable set). Value is nil for a sensitive value in an
// answer of the API.
type Variable struct {
	Id          string  `json:"Id"`
	Name        string  `json:"Name"`
	Value       *string `json:"Value"`
	Description string  `json:"Description"`
	// Type is "String", "Sensitive", "Certificate", "AmazonWebServicesAccount",
	// ...; "Sensitive" makes the value sensitive, as IsSensitive does.
	Type        string  `json:"Type"`
	IsSensitive bool    `json:"IsSensitive"`
	IsEditable  bool    `json:"IsEditable"`
	Scope       Scope   `json:"Scope"`
	Prompt      *Prompt `json:"Prompt"`
}

// Sensitive reports whether v's value is a secret: Type Sensitive or
// IsSensitive (the official CLI sets only the Type).
func (v Variable) Sensitive() bool { return v.IsSensitive || strings.EqualFold(v.Type, "Sensitive") }

// Prompt makes a variable's value asked for when a deployment is created.
type Prompt struct {
	Label       string `json:"Label"`
	Description string `json:"Description"`
	Required    bool   `json:"Required"`
}

// Scope limits where a value applies: to any of the listed values of each
// dimension it names; an empty dimension does not limit.
type Scope struct {
	Environment  []string `json:"Environment,omitempty"`
	Machine      []string `json:"Machine,omitempty"`
	Role         []string `json:"Role,omitempty"`
	Action       []string `json:"Action,omitempty"`
	Channel      []string `json:"Channel,omitempty"`
	TenantTag    []string `json:"TenantTag,omitempty"`
	ProcessOwner []string `json:"ProcessOwner,omitempty"`
}

// Context is where a variable is looked up: the deployment's environment,
// channel and process owner (the project), and, for an action on a
// target, the action, the machine and its roles. Ids throughout; roles by
// name.
type Context struct {
	Environment  string
	Machine      string
	Roles        []string
	Action       string
	Channel      string
	TenantTags   []string
	ProcessOwner string
}

// Weights of the dimensions of a scope: a value that matches on a more
// specific dimension wins over any that match only on less specific ones
// (a machine over a role over an action over an environment over a channel
// over a tenant tag over a process owner), and any scoped value over an
// unscoped one.
const (
	weightMachine = 1 << (6 - iota)
	weightRole
	weightAction
	weightEnvironment
	weightChannel
	weightTenantTag
	weightProcessOwner
)

// rank returns how specific s is for c, and whether it applies at all:
// every dimension s names must hold c's value (for roles and tenant tags,
// one of them).
func (s Scope) rank(c Context) (int, bool) {
	rank := 0
	for _, d := range []struct {
		allowed []string
		have    []string
		weight  int
	}{
		{s.Machine, []string{c.Machine}, weightMachine},
		{s.Role, c.Roles, weightRole},
		{s.Action, []string{c.Action}, weightAction},
		{s.Environment, []string{c.Environment}, weightEnvironment},
		{s.Channel, []string{c.Channel}, weightChannel},
		{s.TenantTag, c.TenantTags, weightTenantTag},
		{s.ProcessOwner, []string{c.ProcessOwner}, weightProcessOwner},
	} {
		if len(d.allowed) == 0 {
			continue
		}
		if !slices.ContainsFunc(d.have, func(h string) bool {
			return h != "" && slices.ContainsFunc(d.allowed, func(a string) bool { return strings.EqualFold(a, h) })
		}) {
			return 0, false
		}
		rank += d.weight
	}
	return rank, true
}

// Set is the values of a deployment's variables, by name ignoring case.
// The zero value is empty and usable.
type Set struct {
	byName map[string][]Variable
}

// NewSet returns the set of vars.
func NewSet(vars []Variable) *Set {
	s := &Set{}
	for _, v := range vars {
		s.Add(v)
	}
	return s
}

// Add adds a value. Among values of a name equally specific for a context,
// the one added first wins.
func (s *Set) Add(v Variable) {
	if s.byName == nil {
		s.byName = map[string][]Variable{}
	}
	key := strings.ToLower(v.Name)
	s.byName[key] = append(s.byName[key], v)
}

// Get returns the value of name in c: of the values whose scope applies,
// the most specific. ok is false if none applies or it has no value.
func (s *Set) Get(name string, c Context) (value string, ok bool) {
	v, ok := s.Find(name, c)
	if !ok || v.Value == nil {
		return "", false
	}
	return *v.Value, true
}

// Find returns the value of name that applies in c, as Get chooses it.
func (s *Set) Find(name string, c Context) (Variable, bool) {
	best, bestRank := Variable{}, -1
	for _, v := range s.byName[strings.ToLower(name)] {
		if r, ok := v.Scope.rank(c); ok && r > bestRank {
			best, bestRank = v, r
		}
	}
	return best, bestRank >= 0
}

// Names returns the names of the set, in the case they were first added,
// sorted ignoring case.
func (s *Set) Names() []string {
	var names []string
	for _, vs := range s.byName {
		names = append(names, vs[0].Name)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return names
}

// Lookup returns the lookup function of Evaluate for c.
func (s *Set) Lookup(c Context) func(name string) (string, bool) {
	return func(name string) (string, bool) { return s.Get(name, c) }
}
