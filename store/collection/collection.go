package collection

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cuttledeploy/cuttle"
)

// Channel is the notification channel of every change of a document:
// payload its id. The unit of work queues it; it is published after commit.
const Channel = "cuttle_documents"

// Kind is the type of an extracted column.
type Kind int

const (
	Text Kind = iota // a string
	Int              // an int64 (or int)
	Bool             // a bool
	// IDs is a set of ids, such as the environments a lifecycle names,
	// stored as ",A,B," so that a filter or a reference check finds one.
	IDs
)

// Column is a field of a document extracted to a column of its table, for
// filters, order, uniqueness and references.
type Column[T any] struct {
	Name  string       // SQL name
	Kind  Kind         // default Text
	Value func(*T) any // string, int, int64, bool or []string, by Kind
	// Fold stores a Text column lower-cased, so that filters on it and its
	// uniqueness ignore case (as Octopus's names do).
	Fold bool
	// Unique makes the column unique per space; a second document with the
	// same value is refused with KindConflict.
	Unique bool
	// Refers names the collection whose ids a Text or IDs column holds:
	// every id must exist when the document is written (KindInvalid
	// otherwise), and a document it names cannot be deleted while this one
	// names it (KindConflict). Label is what the referring document is
	// called in that refusal; default the collection's noun.
	Refers Table
	Label  string
	// MaxLength bounds a Text value, in characters: a longer one is
	// refused with KindInvalid. Default DefaultMaxLength.
	MaxLength int
}

// DefaultMaxLength is the most characters a Text column's value may have
// unless its Column says otherwise (cuttle.MaxNameLength).
const DefaultMaxLength = cuttle.MaxNameLength

// Table is a declared collection, whatever its document type.
type Table interface {
	table() string
	prefix() string
	noun() string
	columns() []columnInfo
	order() string
	bind(*Set)
}

// columnInfo is what Sync and reference checks need of a column.
type columnInfo struct {
	name   string
	kind   Kind
	unique bool
	refers Table
	label  string
	value  func(doc []byte) (any, error) // the column's value of a stored document
}

// Def declares a collection of documents of type T, which must embed
// cuttle.Resource. Declare it once (a package-level variable), add it to a
// Set, and use its methods inside a unit of work (Tx).
type Def[T any] struct {
	Table  string // SQL table, such as "projects"
	Prefix string // id prefix with its dash, such as "Projects-"
	Noun   string // what one is called in messages, such as "project group"
	// Spaced makes the collection space-scoped: each document belongs to
	// the space of its SpaceId, which the caller sets.
	Spaced bool
	// ExplicitIDs makes the caller choose each document's id (its Id set
	// before Insert), as for documents owned one-to-one by another, such as
	// "deploymentprocess-Projects-7"; otherwise the database assigns them.
	ExplicitIDs bool
	// Derive, when set, completes a new document from the id Insert gave
	// it (a project's "deploymentprocess-Projects-7", say); the document
	// is stored with what it sets, at version 0.
	Derive  func(doc *T)
	Columns []Column[T]
	// Order is the ORDER BY of lists, over the table's columns (id,
	// space_id, version and the extracted ones); default "id". An order of
	// several columns has an index of its own, (space_id, Order), so that
	// a page comes from it without sorting every row.
	Order string

	set *Set
}

func (d *Def[T]) table() string  { return d.Table }
func (d *Def[T]) prefix() string { return d.Prefix }
func (d *Def[T]) noun() string   { return d.Noun }
func (d *Def[T]) order() string  { return d.Order }

// bind adds d to s. It panics on a column named as one every table has
// (id, space_id, version, doc): a declaration's mistake, found at start.
func (d *Def[T]) bind(s *Set) {
	for _, c := range d.Columns {
		if slices.Contains([]string{"id", "space_id", "version", "doc"}, c.Name) {
			panic(fmt.Sprintf("collection %s: the column name %q is one every table has; name it otherwise", d.Table, c.Name))
		}
	}
	d.set = s
}

func (d *Def[T]) columns() []columnInfo {
	var out []columnInfo
	for _, c := range d.Columns {
		c := c
		out = append(out, columnInfo{name: c.Name, kind: c.Kind, unique: c.Unique, refers: c.Refers, label: c.Label,
			value: func(b []byte) (any, error) {
				var doc T
				if err := json.Unmarshal(b, &doc); err != nil {
					return nil, err
				}
				return d.columnValue(c, &doc), nil
			}})
	}
	return out
}

// Set is every collection of a database, so that a delete finds the
// documents that refer to the one it removes.
type Set struct{ tables []Table }

// NewSet returns the set of the given collections and binds each to it. A
// collection belongs to one set.
func NewSet(tables ...Table) *Set {
	s := &Set{tables: tables}
	for _, t := range tables {
		t.bind(s)
	}
	return s
}

// Tables returns the collections of the set, in order.
func (s *Set) Tables() []Table { return s.tables }

// meta returns the Resource that doc embeds.
func meta[T any](doc *T) *cuttle.Resource {
	m, ok := any(doc).(interface{ Meta() *cuttle.Resource })
	if !ok {
		panic(fmt.Sprintf("collection: %T does not embed cuttle.Resource", doc))
	}
	return m.Meta()
}

// Query selects documents of a collection. The zero Query selects every
// document of the space-less collection; Take 0 means DefaultTake.
type Query struct {
	Space       string   // the space, for a space-scoped collection
	IDs         []string // only these ids; an id of another collection selects nothing
	Name        string   // the name column equals this, ignoring case
	PartialName string   // the name column contains this, ignoring case
	// Where filters extracted columns: Text, Int and Bool ones by
	// equality, IDs ones by holding the value.
	Where map[string]any
	// AtLeast and Below bound Int columns: column >= value, column < value.
	AtLeast, Below map[string]int64
	Skip           int
	Take           int // at most this many; negative: all
}

// DefaultTake is the page size of a Query with Take 0.
const DefaultTake = 30

// Get returns the document of id. KindNotFound if there is none (an id of
// another collection included).
func (d *Def[T]) Get(ctx context.Context, tx *Tx, id string) (T, error) {
	var zero T
	n, err := d.parse(id)
	if err != nil {
		return zero, err
	}
	docs, _, err := d.list(ctx, tx, []string{"id = ?"}, []any{n}, -1, 0, "")
	if err != nil {
		return zero, err
	}
	if len(docs) == 0 {
		return zero, d.notFound(id)
	}
	return docs[0], nil
}

// GetForUpdate is Get that also locks the document until the unit of work
// ends, so that a read-modify-write cannot interleave with another.
func (d *Def[T]) GetForUpdate(ctx context.Context, tx *Tx, id string) (T, error) {
	var zero T
	n, err := d.parse(id)
	if err != nil {
		return zero, err
	}
	docs, _, err := d.list(ctx, tx, []string{"id = ?"}, []any{n}, -1, 0, tx.D.UpdateLock())
	if err != nil {
		return zero, err
	}
	if len(docs) == 0 {
		return zero, d.notFound(id)
	}
	return docs[0], nil
}

// List returns the page of documents q selects, in the collection's order,
// and how many it selects in all.
func (d *Def[T]) List(ctx context.Context, tx *Tx, q Query) ([]T, int, error) {
	where, args, none, err := d.filter(q)
	if err != nil {
		return nil, 0, err
	}
	if none {
		return []T{}, 0, nil
	}
	take := q.Take
	if take == 0 {
		take = DefaultTake
	}
	return d.list(ctx, tx, where, args, take, q.Skip, "")
}

// Group is one group of Def.Newest: the values of its columns and the id
// of its newest document.
type Group struct {
	Values []string
	ID     string
}

// Newest returns, of the documents q selects (its Skip and Take aside),
// the newest (highest id) of each group of documents that share the
// values of the Text columns by (at least one): one Group per distinct
// combination of values, in no order. The database reads the extracted
// columns only, no document.
func (d *Def[T]) Newest(ctx context.Context, tx *Tx, q Query, by ...string) ([]Group, error) {
	if len(by) == 0 {
		return nil, cuttle.Errorf(cuttle.KindInvalid, "Newest needs a column to group %ss by.", d.Noun)
	}
	for _, name := range by {
		if c, ok := d.column(name); !ok || c.Kind != Text {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "A %s has no text column %q to group by.", d.Noun, name)
		}
	}
	where, args, none, err := d.filter(q)
	if err != nil || none {
		return nil, err
	}
	query := "SELECT " + strings.Join(by, ", ") + ", max(id) FROM " + d.Table
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " GROUP BY " + strings.Join(by, ", ")
	rows, err := tx.Q.Query(ctx, query, args...)
	if err != nil {
		return nil, Error(tx.D, err, "reading "+d.Noun+"s")
	}
	defer rows.Close()
	var groups []Group
	for rows.Next() {
		g := Group{Values: make([]string, len(by))}
		var id int64
		dest := make([]any, 0, len(by)+1)
		for i := range g.Values {
			dest = append(dest, &g.Values[i])
		}
		if err := rows.Scan(append(dest, &id)...); err != nil {
			return nil, Error(tx.D, err, "reading "+d.Noun+"s")
		}
		g.ID = cuttle.FormatID(d.Prefix, id)
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, Error(tx.D, err, "reading "+d.Noun+"s")
	}
	return groups, nil
}

// filter returns the conditions (ANDed) and arguments of what q selects,
// its Skip and Take aside; none if it can select nothing (ids of no
// document of the collection).
func (d *Def[T]) filter(q Query) (where []string, args []any, none bool, err error) {
	if d.Spaced {
		where, args = append(where, "space_id = ?"), append(args, q.Space)
	}
	if q.IDs != nil {
		var ns []string
		for _, id := range q.IDs {
			if n, err := d.parse(id); err == nil {
				ns = append(ns, strconv.FormatInt(n, 10))
			}
		}
		if len(ns) == 0 {
			return nil, nil, true, nil
		}
		where = append(where, "id IN ("+strings.Join(ns, ", ")+")")
	}
	if q.Name != "" {
		where, args = append(where, "name = ?"), append(args, strings.ToLower(q.Name))
	}
	if q.PartialName != "" {
		where, args = append(where, `name LIKE ? ESCAPE '\'`), append(args, "%"+likeEscape(strings.ToLower(q.PartialName))+"%")
	}
	for name, v := range q.Where {
		c, ok := d.column(name)
		if !ok {
			return nil, nil, false, cuttle.Errorf(cuttle.KindInvalid, "A %s has no filter %q.", d.Noun, name)
		}
		if c.Kind == IDs {
			where, args = append(where, name+` LIKE ? ESCAPE '\'`), append(args, "%,"+likeEscape(fmt.Sprint(v))+",%")
			continue
		}
		if c.Fold {
			v = strings.ToLower(fmt.Sprint(v))
		}
		if text, ok := v.(string); ok && c.Kind != Text { // from a query parameter
			var err error
			if c.Kind == Bool {
				v, err = strconv.ParseBool(text)
			} else {
				v, err = strconv.ParseInt(text, 10, 64)
			}
			if err != nil {
				return nil, nil, false, cuttle.Errorf(cuttle.KindInvalid, "The filter %s takes a %s, not %.40q.", name, map[Kind]string{Bool: "true or false", Int: "whole number"}[c.Kind], text)
			}
		}
		where, args = append(where, name+" = ?"), append(args, v)
	}
	for _, bound := range []struct {
		op     string
		values map[string]int64
	}{{">=", q.AtLeast}, {"<", q.Below}} {
		for name, v := range bound.values {
			if c, ok := d.column(name); !ok || c.Kind != Int {
				return nil, nil, false, cuttle.Errorf(cuttle.KindInvalid, "A %s has no whole-number filter %q.", d.Noun, name)
			}
			where, args = append(where, name+" "+bound.op+" ?"), append(args, v)
		}
	}
	return where, args, false, nil
}

// list runs the select of where (ANDed) with args and returns the page and
// the total.
func (d *Def[T]) list(ctx context.Context, tx *Tx, where []string, args []any, take, skip int, lock string) ([]T, int, error) {
	query := "SELECT id, space_id, version, doc FROM " + d.Table
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	order := d.Order
	if order == "" {
		order = "id"
	}
	query += " ORDER BY " + order
	if take >= 0 {
		query += " LIMIT " + strconv.Itoa(take) + " OFFSET " + strconv.Itoa(max(skip, 0))
	}
	query += lock
	rows, err := tx.Q.Query(ctx, query, args...)
	if err != nil {
		return nil, 0, Error(tx.D, err, "reading "+d.Noun+"s")
	}
	defer rows.Close()
	docs := []T{}
	total := 0
	for rows.Next() {
		var (
			id, version int64
			space       string
			raw         []byte
		)
		if err := rows.Scan(&id, &space, &version, &raw); err != nil {
			return nil, 0, Error(tx.D, err, "reading "+d.Noun+"s")
		}
		var doc T
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, 0, Error(tx.D, fmt.Errorf("%s%d: %w", d.Prefix, id, err), "reading "+d.Noun+"s")
		}
		m := meta(&doc)
		m.ID, m.SpaceID, m.Version, m.Links = cuttle.FormatID(d.Prefix, id), space, version, nil
		docs = append(docs, doc)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, Error(tx.D, err, "reading "+d.Noun+"s")
	}
	rows.Close()
	total = max(skip, 0) + len(docs)
	if take >= 0 && (len(docs) == take || (len(docs) == 0 && skip > 0)) && lock == "" {
		// A full page, or one past the end: there may be more than it shows.
		// A statement of its own, so that the page itself can come from an
		// index in order, never from sorting every row.
		count := "SELECT count(*) FROM " + d.Table
		if len(where) > 0 {
			count += " WHERE " + strings.Join(where, " AND ")
		}
		if _, err := ScanOne(ctx, tx.Q, count, args, &total); err != nil {
			return nil, 0, Error(tx.D, err, "counting "+d.Noun+"s")
		}
	}
	return docs, total, nil
}

// Insert stores a new document, sets its Id (unless the collection takes
// explicit ids) and Version 0, and queues its notification. KindConflict
// if a unique column's value is taken, KindInvalid if a reference names no
// document.
func (d *Def[T]) Insert(ctx context.Context, tx *Tx, doc *T) error {
	m := meta(doc)
	if err := d.checkSpace(m); err != nil {
		return err
	}
	if err := d.checkLengths(doc); err != nil {
		return err
	}
	if err := d.checkRefs(ctx, tx, doc); err != nil {
		return err
	}
	var explicit int64
	if d.ExplicitIDs {
		n, err := d.parse(m.ID)
		if err != nil {
			return cuttle.Errorf(cuttle.KindInvalid, "A %s needs an id of the form %sN.", d.Noun, d.Prefix)
		}
		explicit = n
	} else {
		m.ID = ""
	}
	m.Version = 0
	raw, err := d.encode(doc)
	if err != nil {
		return err
	}
	cols := []string{"space_id", "version", "doc"}
	args := []any{m.SpaceID, int64(0), raw}
	if d.ExplicitIDs {
		cols, args = append(cols, "id"), append(args, explicit)
	}
	for _, c := range d.Columns {
		cols, args = append(cols, c.Name), append(args, d.columnValue(c, doc))
	}
	query := "INSERT INTO " + d.Table + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ") RETURNING id"
	rows, err := tx.Q.Query(ctx, query, args...)
	if err != nil {
		return d.writeError(tx, err, doc, "creating the "+d.Noun)
	}
	defer rows.Close()
	var id int64
	if rows.Next() {
		err = rows.Scan(&id)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return d.writeError(tx, err, doc, "creating the "+d.Noun)
	}
	m.ID = cuttle.FormatID(d.Prefix, id)
	if d.Derive != nil {
		d.Derive(doc)
		sets, args, err := d.values(doc)
		if err != nil {
			return err
		}
		if _, err := tx.Q.Exec(ctx, "UPDATE "+d.Table+" SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, id)...); err != nil {
			return d.writeError(tx, err, doc, "creating the "+d.Noun)
		}
	}
	tx.Notify(Channel, m.ID)
	return nil
}

// values returns the assignments of the stored document and its columns,
// for an UPDATE, with their arguments.
func (d *Def[T]) values(doc *T) (sets []string, args []any, err error) {
	raw, err := d.encode(doc)
	if err != nil {
		return nil, nil, err
	}
	sets, args = []string{"doc = ?"}, []any{raw}
	for _, c := range d.Columns {
		sets, args = append(sets, c.Name+" = ?"), append(args, d.columnValue(c, doc))
	}
	return sets, args, nil
}

// Update replaces the document of doc's Id if its stored version is doc's
// Version, and moves both on by one. KindNotFound if there is none,
// KindConflict if the version is stale (nothing changes) or a unique value
// is taken, KindInvalid for a reference to nothing.
func (d *Def[T]) Update(ctx context.Context, tx *Tx, doc *T) error {
	m := meta(doc)
	n, err := d.parse(m.ID)
	if err != nil {
		return err
	}
	if err := d.checkSpace(m); err != nil {
		return err
	}
	if err := d.checkLengths(doc); err != nil {
		return err
	}
	if err := d.checkRefs(ctx, tx, doc); err != nil {
		return err
	}
	sets, args, err := d.values(doc)
	if err != nil {
		return err
	}
	args = append(args, n, m.Version)
	k, err := tx.Q.Exec(ctx, "UPDATE "+d.Table+" SET version = version + 1, "+strings.Join(sets, ", ")+" WHERE id = ? AND version = ?", args...)
	if err != nil {
		return d.writeError(tx, err, doc, "changing the "+d.Noun)
	}
	if k == 0 {
		cur, err := d.Get(ctx, tx, m.ID)
		if err != nil {
			return err
		}
		return cuttle.Errorf(cuttle.KindConflict, "The %s %s was changed by someone else since version %d (it is at version %d now): read it again and repeat the change.",
			d.Noun, m.ID, m.Version, meta(&cur).Version)
	}
	m.Version++
	tx.Notify(Channel, m.ID)
	return nil
}

// Delete removes the document of id and queues its notification.
// KindNotFound if there is none, KindConflict while another document refers
// to it (the refusal names one).
func (d *Def[T]) Delete(ctx context.Context, tx *Tx, id string) error {
	n, err := d.parse(id)
	if err != nil {
		return err
	}
	// Lock the row first, so that a reference written meanwhile either
	// committed before the check below (which then sees it) or waits for
	// this delete and then finds nothing to refer to.
	if _, err := d.GetForUpdate(ctx, tx, id); err != nil {
		return err
	}
	if err := d.checkReferrers(ctx, tx, id); err != nil {
		return err
	}
	if _, err := tx.Q.Exec(ctx, "DELETE FROM "+d.Table+" WHERE id = ?", n); err != nil {
		return Error(tx.D, err, "deleting the "+d.Noun)
	}
	tx.Notify(Channel, id)
	return nil
}

// ParseID returns the number of an id of this collection. KindNotFound for
// anything else.
func (d *Def[T]) ParseID(id string) (int64, error) { return d.parse(id) }

func (d *Def[T]) parse(id string) (int64, error) {
	n, err := cuttle.ParseID(d.Prefix, id)
	if err != nil {
		return 0, d.notFound(id)
	}
	return n, nil
}

func (d *Def[T]) notFound(id string) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no %s with the id %q.", d.Noun, id)
}

func (d *Def[T]) column(name string) (Column[T], bool) {
	for _, c := range d.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column[T]{}, false
}

func (d *Def[T]) checkSpace(m *cuttle.Resource) error {
	if d.Spaced && m.SpaceID == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A %s needs a SpaceId.", d.Noun)
	}
	if !d.Spaced {
		m.SpaceID = ""
	}
	return nil
}

// encode returns the stored form of doc: its JSON without the links.
func (d *Def[T]) encode(doc *T) ([]byte, error) {
	m := meta(doc)
	links := m.Links
	m.Links = nil
	raw, err := json.Marshal(doc)
	m.Links = links
	if err != nil {
		return nil, cuttle.Wrap(err, "encoding the "+d.Noun)
	}
	return raw, nil
}

// columnValue returns the stored value of column c of doc.
func (d *Def[T]) columnValue(c Column[T], doc *T) any {
	v := c.Value(doc)
	switch c.Kind {
	case IDs:
		ids, _ := v.([]string)
		if len(ids) == 0 {
			return ""
		}
		return "," + strings.Join(ids, ",") + ","
	case Int:
		switch n := v.(type) {
		case int:
			return int64(n)
		case int32:
			return int64(n)
		}
		return v
	case Bool:
		return v
	default:
		s := fmt.Sprint(v)
		if c.Fold {
			s = strings.ToLower(s)
		}
		return s
	}
}

// checkLengths fails with KindInvalid if a Text column's value of doc is
// longer than its MaxLength.
func (d *Def[T]) checkLengths(doc *T) error {
	for _, c := range d.Columns {
		if c.Kind != Text {
			continue
		}
		limit := c.MaxLength
		if limit <= 0 {
			limit = DefaultMaxLength
		}
		if n := utf8.RuneCountInString(fmt.Sprint(c.Value(doc))); n > limit {
			return cuttle.Errorf(cuttle.KindInvalid, "The %s of %s must be at most %d characters; it has %d.", c.Name, Article(d.Noun), limit, n)
		}
	}
	return nil
}

// checkRefs fails with KindInvalid unless every id that doc's referring
// columns hold names a document, which it locks against a delete until the
// unit of work ends.
func (d *Def[T]) checkRefs(ctx context.Context, tx *Tx, doc *T) error {
	for _, c := range d.Columns {
		if c.Refers == nil {
			continue
		}
		var ids []string
		switch v := c.Value(doc).(type) {
		case string:
			if v != "" {
				ids = []string{v}
			}
		case []string:
			ids = v
		}
		for _, id := range ids {
			n, err := cuttle.ParseID(c.Refers.prefix(), id)
			if err == nil {
				found, err := Exists(ctx, tx.Q, "SELECT 1 FROM "+c.Refers.table()+" WHERE id = ?"+tx.D.ShareLock(), n)
				if err != nil {
					return Error(tx.D, err, "checking the "+c.Refers.noun()+" "+id)
				}
				if found {
					continue
				}
			}
			return cuttle.Errorf(cuttle.KindInvalid, "There is no %s %q (%s of the %s).", c.Refers.noun(), id, c.Name, d.Noun)
		}
	}
	return nil
}

// checkReferrers fails with KindConflict if a document of any collection of
// the set refers to id.
func (d *Def[T]) checkReferrers(ctx context.Context, tx *Tx, id string) error {
	if d.set == nil {
		return nil
	}
	for _, t := range d.set.tables {
		for _, c := range t.columns() {
			if c.refers == nil || c.refers.table() != d.Table {
				continue
			}
			cond, arg := c.name+" = ?", any(id)
			if c.kind == IDs {
				cond, arg = c.name+` LIKE ? ESCAPE '\'`, "%,"+likeEscape(id)+",%"
			}
			rows, err := tx.Q.Query(ctx, "SELECT id, doc FROM "+t.table()+" WHERE "+cond+" LIMIT 1", arg)
			if err != nil {
				return Error(tx.D, err, "looking for what uses the "+d.Noun+" "+id)
			}
			var (
				n   int64
				raw []byte
			)
			found := rows.Next() && rows.Scan(&n, &raw) == nil
			err = rows.Err()
			rows.Close()
			if err != nil {
				return Error(tx.D, err, "looking for what uses the "+d.Noun+" "+id)
			}
			if found {
				label := c.label
				if label == "" {
					label = t.noun()
				}
				return cuttle.Errorf(cuttle.KindConflict, "The %s %s is used by the %s %s%s: change or delete that first.",
					d.Noun, id, label, cuttle.FormatID(t.prefix(), n), calledIn(raw))
			}
		}
	}
	return nil
}

// calledIn returns " (its name)" of a stored document with a Name or a
// Username, "" for another.
func calledIn(doc []byte) string {
	var named struct{ Name, Username string }
	json.Unmarshal(doc, &named) // a document that is no object has no name
	if n := cmp.Or(named.Name, named.Username); n != "" {
		return " (" + n + ")"
	}
	return ""
}

// writeError classifies an error of an insert or update: a unique
// violation is KindConflict naming the value taken.
func (d *Def[T]) writeError(tx *Tx, err error, doc *T, what string) error {
	constraint, ok := tx.D.UniqueViolation(err)
	if !ok {
		return Error(tx.D, err, what)
	}
	if strings.HasSuffix(constraint, "_pkey") { // an explicit id taken

		return cuttle.Errorf(cuttle.KindConflict, "The %s %s exists already.", d.Noun, meta(doc).ID)
	}
	for _, c := range d.Columns {
		if c.Unique && (strings.Contains(constraint, c.Name) || d.uniqueCount() == 1) {
			return cuttle.Errorf(cuttle.KindConflict, "%s with the %s %q exists already.", Article(d.Noun), c.Name, fmt.Sprint(c.Value(doc)))
		}
	}
	return cuttle.Errorf(cuttle.KindConflict, "%s like this one exists already.", Article(d.Noun))
}

func (d *Def[T]) uniqueCount() int {
	n := 0
	for _, c := range d.Columns {
		if c.Unique {
			n++
		}
	}
	return n
}

// Article returns noun with its indefinite article, capitalized: "A project", "An environment", "A user".
func Article(noun string) string {
	// "user" sounds a consonant first: "A user".
	if noun != "" && strings.ContainsRune("aeiou", unicode.ToLower(rune(noun[0]))) && !strings.HasPrefix(strings.ToLower(noun), "us") {
		return "An " + noun
	}
	return "A " + noun
}

// likeEscape escapes the wildcards of a LIKE pattern with \.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// TableName returns the SQL table of a declared collection.
func TableName(t Table) string { return t.table() }
