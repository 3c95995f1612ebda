package variables

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
)

// maxDepth bounds how deep values that refer to other variables are
// expanded, so that a variable that refers to itself ends; maxExpanded
// bounds the bytes such expansions produce, so that values that refer to
// each other twice over (#{a}#{a}, each) cannot grow a template without end.
const (
	maxDepth    = 20
	maxExpanded = 16 << 20
)

// Evaluate replaces the references of tmpl, in Octopus's syntax:
//
//   - #{Name} is the variable's value, itself evaluated (a value may refer
//     to other variables, 20 deep and 16 MiB of expansions at most); a
//     variable that has no value is left as it is, #{Name}, as Octopus
//     leaves it;
//   - #{Name | Filter | Filter ...}: the filters ToLower, ToUpper, Trim,
//     ToBase64, FromBase64, HtmlEscape, JsonEscape and UriEscape, applied in
//     order;
//   - #{if Cond}...#{else}...#{/if} and #{unless Cond}...#{/unless}, where
//     Cond is Name (true unless empty, missing, "0", "no" or "false"), or
//     Name == "text", Name != "text", Name == Other;
//   - #{each x in Name}...#{/each} repeats its body for each item of the
//     comma-separated value of Name, with #{x} the item and
//     Octopus.Template.Each.Index, .First and .Last about it;
//   - ##{ is a literal #{.
//
// Names ignore case and may hold spaces and brackets, as in
// #{Octopus.Action[Deploy web].Output.Port}. A template that does not
// parse (an #{if} never closed, say) is answered unchanged with the error.
func Evaluate(tmpl string, lookup func(name string) (string, bool)) (string, error) {
	nodes, err := parse(tmpl)
	if err != nil {
		return tmpl, err
	}
	var b strings.Builder
	(&evaluator{lookup: lookup}).run(&b, nodes, 0)
	return b.String(), nil
}

// node is one part of a parsed template.
type node struct {
	kind       nodeKind
	text       string // text: literally; expr: the whole #{...} for when it cannot be evaluated
	name       string // expr, each: the variable; if/unless: the condition's left side
	filters    []string
	op, right  string // if/unless: "==" or "!=", and the right side
	rightIsLit bool
	item       string // each: the loop variable
	body, alt  []node // if/unless/each; alt: the #{else} part
}

type nodeKind int

const (
	textNode nodeKind = iota
	exprNode
	ifNode
	unlessNode
	eachNode
)

// token is a piece of a template: text, or the inside of #{...}.
type token struct {
	directive bool
	text      string
}

// tokenize splits tmpl into text and directives.
func tokenize(tmpl string) []token {
	var toks []token
	var text strings.Builder
	for i := 0; i < len(tmpl); {
		switch {
		case strings.HasPrefix(tmpl[i:], "##{"):
			text.WriteString("#{")
			i += 3
		case strings.HasPrefix(tmpl[i:], "#{"):
			end := strings.IndexByte(tmpl[i+2:], '}')
			if end < 0 {
				text.WriteString(tmpl[i:]) // a #{ never closed is text
				i = len(tmpl)
				continue
			}
			if text.Len() > 0 {
				toks = append(toks, token{text: text.String()})
				text.Reset()
			}
			toks = append(toks, token{directive: true, text: tmpl[i+2 : i+2+end]})
			i += 2 + end + 1
		default:
			text.WriteByte(tmpl[i])
			i++
		}
	}
	if text.Len() > 0 {
		toks = append(toks, token{text: text.String()})
	}
	return toks
}

func parse(tmpl string) ([]node, error) {
	p := &parser{toks: tokenize(tmpl)}
	nodes, end, err := p.block()
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, fmt.Errorf("#{%s} has no block to end", end)
	}
	return nodes, nil
}

type parser struct {
	toks []token
	pos  int
}

// block parses nodes up to the end of the template or a closing directive
// (/if, /unless, /each, else), which it returns.
func (p *parser) block() ([]node, string, error) {
	var nodes []node
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		p.pos++
		if !t.directive {
			nodes = append(nodes, node{kind: textNode, text: t.text})
			continue
		}
		d := strings.TrimSpace(t.text)
		word, rest, _ := strings.Cut(d, " ")
		switch strings.ToLower(word) {
		case "/if", "/unless", "/each", "else":
			return nodes, strings.ToLower(word), nil
		case "if", "unless":
			n, err := p.conditional(word, strings.TrimSpace(rest))
			if err != nil {
				return nil, "", err
			}
			nodes = append(nodes, n)
		case "each":
			n, err := p.each(strings.TrimSpace(rest))
			if err != nil {
				return nil, "", err
			}
			nodes = append(nodes, n)
		default:
			parts := strings.Split(d, "|")
			n := node{kind: exprNode, text: "#{" + t.text + "}", name: strings.TrimSpace(parts[0])}
			for _, f := range parts[1:] {
				n.filters = append(n.filters, strings.TrimSpace(f))
			}
			nodes = append(nodes, n)
		}
	}
	return nodes, "", nil
}

func (p *parser) conditional(word, cond string) (node, error) {
	n := node{kind: ifNode}
	closing := "/if"
	if strings.EqualFold(word, "unless") {
		n.kind, closing = unlessNode, "/unless"
	}
	n.name = cond
	for _, op := range []string{"==", "!="} {
		if left, right, ok := strings.Cut(cond, op); ok {
			n.name, n.op, n.right = strings.TrimSpace(left), op, strings.TrimSpace(right)
			if unq, err := strconv.Unquote(n.right); err == nil && strings.HasPrefix(n.right, `"`) {
				n.right, n.rightIsLit = unq, true
			}
			break
		}
	}
	if n.name == "" {
		return node{}, fmt.Errorf("#{%s} needs a condition", word)
	}
	body, end, err := p.block()
	if err != nil {
		return node{}, err
	}
	n.body = body
	if end == "else" {
		if n.alt, end, err = p.block(); err != nil {
			return node{}, err
		}
	}
	if end != closing {
		return node{}, fmt.Errorf("#{%s %s} is not closed with #{%s}", word, cond, closing)
	}
	return n, nil
}

func (p *parser) each(spec string) (node, error) {
	item, list, ok := strings.Cut(spec, " in ")
	if !ok || strings.TrimSpace(item) == "" || strings.TrimSpace(list) == "" {
		return node{}, fmt.Errorf("#{each %s} must read #{each item in Name}", spec)
	}
	body, end, err := p.block()
	if err != nil {
		return node{}, err
	}
	if end != "/each" {
		return node{}, fmt.Errorf("#{each %s} is not closed with #{/each}", spec)
	}
	return node{kind: eachNode, item: strings.TrimSpace(item), name: strings.TrimSpace(list), body: body}, nil
}

// evaluator evaluates parsed templates with a lookup, and the loop
// variables of the #{each} it is inside.
type evaluator struct {
	lookup   func(string) (string, bool)
	loops    []map[string]string // innermost last; keys lower-case
	expanded int                 // bytes of values expanded so far
}

func (e *evaluator) get(name string, depth int) (string, bool) {
	key := strings.ToLower(name)
	for i := len(e.loops) - 1; i >= 0; i-- {
		if v, ok := e.loops[i][key]; ok {
			return v, true
		}
	}
	v, ok := e.lookup(name)
	if !ok {
		return "", false
	}
	if depth < maxDepth && e.expanded < maxExpanded && strings.Contains(v, "#{") {
		if nodes, err := parse(v); err == nil {
			var b strings.Builder
			e.run(&b, nodes, depth+1)
			v = b.String()
			e.expanded += len(v)
		}
	}
	return v, true
}

func (e *evaluator) run(b *strings.Builder, nodes []node, depth int) {
	for _, n := range nodes {
		switch n.kind {
		case textNode:
			b.WriteString(n.text)
		case exprNode:
			v, ok := e.get(n.name, depth)
			if ok {
				v, ok = applyFilters(v, n.filters)
			}
			if !ok {
				b.WriteString(n.text)
				continue
			}
			b.WriteString(v)
		case ifNode, unlessNode:
			if e.truth(n, depth) == (n.kind == ifNode) {
				e.run(b, n.body, depth)
			} else {
				e.run(b, n.alt, depth)
			}
		case eachNode:
			list, _ := e.get(n.name, depth)
			var items []string
			for _, it := range strings.Split(list, ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			for i, it := range items {
				e.loops = append(e.loops, map[string]string{
					strings.ToLower(n.item):       it,
					"octopus.template.each.index": strconv.Itoa(i),
					"octopus.template.each.first": strconv.FormatBool(i == 0),
					"octopus.template.each.last":  strconv.FormatBool(i == len(items)-1),
				})
				e.run(b, n.body, depth)
				e.loops = e.loops[:len(e.loops)-1]
			}
		}
	}
}

// truth evaluates the condition of an #{if} or #{unless}.
func (e *evaluator) truth(n node, depth int) bool {
	left, ok := e.get(n.name, depth)
	if n.op == "" {
		return ok && truthy(left)
	}
	right := n.right
	if !n.rightIsLit {
		right, _ = e.get(n.right, depth)
	}
	equal := ok && strings.EqualFold(left, right)
	return equal == (n.op == "==")
}

// truthy reports whether a value counts as true in a condition.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false":
		return false
	}
	return true
}

// applyFilters applies the named filters in order; ok is false for an
// unknown filter or a value a filter cannot take, and then the reference
// is left as it is.
func applyFilters(v string, filters []string) (string, bool) {
	for _, f := range filters {
		switch strings.ToLower(f) {
		case "tolower":
			v = strings.ToLower(v)
		case "toupper":
			v = strings.ToUpper(v)
		case "trim":
			v = strings.TrimSpace(v)
		case "tobase64":
			v = base64.StdEncoding.EncodeToString([]byte(v))
		case "frombase64":
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return "", false
			}
			v = string(b)
		case "htmlescape":
			v = html.EscapeString(v)
		case "jsonescape":
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(v)
			v = strings.TrimSuffix(b.String(), "\n")
			v = v[1 : len(v)-1]
		case "uriescape":
			v = url.QueryEscape(v)
		default:
			return "", false
		}
	}
	return v, true
}
