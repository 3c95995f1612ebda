package packagefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// JSONConfigurationVariables is Octopus's "JSON configuration variables"
// feature (Octopus.Features.JsonConfigurationVariables), for the files
// under dir that patterns match (the action's
// Octopus.Action.Package.JsonConfigurationVariablesTargets, one pattern a
// line), with patterns read as SubstituteVariables reads them.
//
// In each file, a property or array item whose path is a variable's name
// gets the variable's value. A path joins the names of the properties
// from the top with ':', and array items by their index from 0:
// Logging:LogLevel:Default, Items:0:Name. lookup answers a variable's
// value by name and must ignore case, as variables.Set's Lookup does. A
// property that matches is replaced whole (an object with all it holds),
// and nothing inside it is looked up.
//
// The value becomes:
//   - the JSON object or array it is, when it is one (blanks around it
//     allowed), whatever the property held;
//   - the number, true, false or null it is, when it is one and the
//     property held no string;
//   - else a string: a property that held a string keeps a string, so
//     "007" stays "007".
//
// A file in which nothing matches is left as it is. A file that changes
// is written back indented with two spaces, keeping the order of its
// properties, its line endings (CRLF or LF), a byte order mark and a
// final line break if it had them; comments (// and /* */) and trailing
// commas, which .NET's appsettings.json allow, are read but not written
// back. Strings are written with the escapes JSON needs only. Writes are
// atomic and stay inside dir, as SubstituteVariables's. A file that is
// not JSON is an error naming it and its line; files changed before it
// stay changed (and are in changed).
func JSONConfigurationVariables(dir string, patterns []string, lookup func(name string) (string, bool)) (changed []string, unmatched []string, err error) {
	return eachFile(dir, patterns, func(_ *os.Root, name string, content []byte) ([]byte, error) {
		out, err := replaceJSON(content, lookup)
		if err != nil {
			return nil, fmt.Errorf("The file %s is not JSON (%v): fix it, or take it out of the JSON configuration variables' files.", name, err)
		}
		return out, nil
	})
}

// replaceJSON applies the variables to one file's content; nil when
// nothing matched.
func replaceJSON(content []byte, lookup func(string) (string, bool)) ([]byte, error) {
	bom := []byte("\xef\xbb\xbf")
	data := content
	hasBOM := bytes.HasPrefix(data, bom)
	if hasBOM {
		data = data[len(bom):]
	}
	top, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	if !replaceIn(top, "", lookup) {
		return nil, nil
	}
	eol := "\n"
	if bytes.Contains(data, []byte("\r\n")) {
		eol = "\r\n"
	}
	var b bytes.Buffer
	if hasBOM {
		b.Write(bom)
	}
	writeJSON(&b, top, "", eol)
	if bytes.HasSuffix(bytes.TrimRight(data, " \t"), []byte("\n")) {
		b.WriteString(eol)
	}
	return b.Bytes(), nil
}

// jsonNode is a JSON value that keeps its properties in order.
type jsonNode struct {
	kind  byte   // '{' object, '[' array, 's' string, 'n' number, 'l' true, false or null
	text  string // a string's value; a number's or a literal's JSON text
	keys  []string
	items []*jsonNode // an object's values (one per key) or an array's items
}

// replaceIn replaces the properties and items of n whose path (below
// prefix) a variable names, and says whether it replaced any.
func replaceIn(n *jsonNode, prefix string, lookup func(string) (string, bool)) bool {
	hit := false
	for i, item := range n.items {
		var p string
		if n.kind == '{' {
			p = n.keys[i]
		} else {
			p = strconv.Itoa(i)
		}
		if prefix != "" {
			p = prefix + ":" + p
		}
		if v, ok := lookup(p); ok {
			n.items[i] = jsonValueOf(v, item)
			hit = true
		} else if replaceIn(item, p, lookup) {
			hit = true
		}
	}
	return hit
}

// jsonValueOf is what value becomes in place of old (see
// JSONConfigurationVariables).
func jsonValueOf(value string, old *jsonNode) *jsonNode {
	t := strings.TrimSpace(value)
	if t != "" {
		if n, err := parseStrictJSON(t); err == nil {
			switch {
			case n.kind == '{' || n.kind == '[':
				return n
			case (n.kind == 'n' || n.kind == 'l') && old.kind != 's':
				return n
			}
		}
	}
	return &jsonNode{kind: 's', text: value}
}

// parseJSON reads one JSON value, allowing comments and trailing commas.
func parseJSON(data []byte) (*jsonNode, error) {
	clean, err := stripComments(data)
	if err != nil {
		return nil, err
	}
	n, err := parseStrictJSON(string(clean))
	if err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line := 1 + bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n"))
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
	}
	return n, err
}

func parseStrictJSON(s string) (*jsonNode, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	n, err := readJSON(dec)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errors.New("it ends before its last value does")
			if strings.TrimSpace(s) == "" {
				err = errors.New("it is empty")
			}
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("more than one value")
		}
		return nil, err
	}
	return n, nil
}

func readJSON(dec *json.Decoder) (*jsonNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &jsonNode{kind: byte(t)}
		for dec.More() {
			if n.kind == '{' {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key.(string))
			}
			item, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &jsonNode{kind: 's', text: t}, nil
	case json.Number:
		return &jsonNode{kind: 'n', text: t.String()}, nil
	case bool:
		return &jsonNode{kind: 'l', text: strconv.FormatBool(t)}, nil
	case nil:
		return &jsonNode{kind: 'l', text: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}

// stripComments blanks out // and /* */ comments and commas that a
// closing bracket follows, outside strings, keeping every other byte
// where it was (so that offsets still point into data).
func stripComments(data []byte) ([]byte, error) {
	out := bytes.Clone(data)
	inString := false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				if out[i] != '\r' {
					out[i] = ' '
				}
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			end := bytes.Index(out[i+2:], []byte("*/"))
			if end < 0 {
				return nil, fmt.Errorf("line %d: a /* comment is not closed", 1+bytes.Count(data[:i], []byte("\n")))
			}
			for j := i; j < i+2+end+2; j++ {
				if out[j] != '\n' && out[j] != '\r' {
					out[j] = ' '
				}
			}
			i += 2 + end + 1
		}
	}
	// Trailing commas, now that no comment hides what follows one.
	inString = false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ',':
			j := i + 1
			for j < len(out) && (out[j] == ' ' || out[j] == '\t' || out[j] == '\n' || out[j] == '\r') {
				j++
			}
			if j < len(out) && (out[j] == '}' || out[j] == ']') {
				out[i] = ' '
			}
		}
	}
	return out, nil
}

// writeJSON writes n indented by two spaces a level, at indent.
func writeJSON(b *bytes.Buffer, n *jsonNode, indent, eol string) {
	switch n.kind {
	case 's':
		writeString(b, n.text)
	case 'n', 'l':
		b.WriteString(n.text)
	default:
		opening, closing := byte('{'), byte('}')
		if n.kind == '[' {
			opening, closing = '[', ']'
		}
		b.WriteByte(opening)
		if len(n.items) == 0 {
			b.WriteByte(closing)
			return
		}
		inner := indent + "  "
		for i, item := range n.items {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(eol)
			b.WriteString(inner)
			if n.kind == '{' {
				writeString(b, n.keys[i])
				b.WriteString(": ")
			}
			writeJSON(b, item, inner, eol)
		}
		b.WriteString(eol)
		b.WriteString(indent)
		b.WriteByte(closing)
	}
}

// writeString writes s quoted, escaping only what JSON needs (not <, >
// and &, as json.Marshal would).
func writeString(b *bytes.Buffer, s string) {
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	e.Encode(s)             // cannot fail for a string
	b.Truncate(b.Len() - 1) // Encode's line break
}
