package collection

import (
	"context"
	"fmt"
	"strings"
)

// Note is a notification that a unit of work publishes once it commits.
type Note struct {
	Channel string
	Payload string
}

// Tx is a unit of work: the statements of one transaction, over every
// collection and the engine's hand-written tables, and the notifications
// queued for after its commit (DESIGN.md invariant 10). The engines make
// them (store.Store.Update, store.Store.Read); a Tx is used by one
// goroutine.
type Tx struct {
	Q     Querier
	D     Dialect
	notes []Note
}

// NewTx returns a unit of work over q, which is a transaction of the engine
// of d (or, for reads only, its connection pool).
func NewTx(q Querier, d Dialect) *Tx { return &Tx{Q: q, D: d} }

// Notify queues a notification for after the commit; the same one queued
// twice is published once.
func (tx *Tx) Notify(channel, payload string) {
	n := Note{channel, payload}
	for _, have := range tx.notes {
		if have == n {
			return
		}
	}
	tx.notes = append(tx.notes, n)
}

// Notes returns the notifications queued, in order.
func (tx *Tx) Notes() []Note { return tx.notes }

// Sync creates the tables, columns and indexes of the set's collections
// that the database lacks, in tx; the engine runs it once at open, after
// its migrations and under the same lock. A column added to a declaration
// is filled from the documents already stored, so a new filter or a new
// uniqueness applies to old documents too (a unique one fails Sync, and so
// the open, if old documents break it).
func Sync(ctx context.Context, tx *Tx, set *Set) error {
	for _, t := range set.tables {
		if err := syncTable(ctx, tx, t); err != nil {
			return fmt.Errorf("collection %s: %w", t.table(), err)
		}
	}
	return nil
}

func syncTable(ctx context.Context, tx *Tx, t Table) error {
	d := tx.D
	cols := []string{
		"id " + d.IDColumn(),
		"space_id " + d.Type(Text) + " NOT NULL DEFAULT ''",
		"version " + d.Type(Int) + " NOT NULL DEFAULT 0",
		"doc " + d.DocType() + " NOT NULL",
	}
	for _, c := range t.columns() {
		cols = append(cols, columnDDL(d, c))
	}
	if _, err := tx.Q.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+t.table()+" (\n\t"+strings.Join(cols, ",\n\t")+"\n)"); err != nil {
		return err
	}
	var added []columnInfo
	for _, c := range t.columns() {
		ok, err := d.HasColumn(ctx, tx.Q, t.table(), c.name)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := tx.Q.Exec(ctx, "ALTER TABLE "+t.table()+" ADD COLUMN "+columnDDL(d, c)); err != nil {
				return err
			}
			added = append(added, c)
		}
	}
	if err := backfill(ctx, tx, t, added); err != nil {
		return err
	}
	for _, c := range t.columns() {
		unique, suffix := "", ""
		if c.unique {
			unique, suffix = "UNIQUE ", "_unique"
		}
		if _, err := tx.Q.Exec(ctx, "CREATE "+unique+"INDEX IF NOT EXISTS "+t.table()+"_"+c.name+suffix+
			" ON "+t.table()+" (space_id, "+c.name+")"); err != nil {
			return err
		}
	}
	for _, c := range t.columns() {
		if ddl := d.SearchIndex(t.table(), c.name); c.name == "name" && ddl != "" {
			if _, err := tx.Q.Exec(ctx, ddl); err != nil {
				return err
			}
		}
	}
	if strings.Contains(t.order(), ",") {
		if _, err := tx.Q.Exec(ctx, "CREATE INDEX IF NOT EXISTS "+t.table()+"_order ON "+t.table()+" (space_id, "+t.order()+")"); err != nil {
			return err
		}
	}
	return nil
}

func columnDDL(d Dialect, c columnInfo) string {
	def := "''"
	switch c.kind {
	case Int:
		def = "0"
	case Bool:
		def = "false"
		if d.Name() == "sqlite" {
			def = "0"
		}
	}
	return c.name + " " + d.Type(c.kind) + " NOT NULL DEFAULT " + def
}

// backfill sets the added columns of every stored document from its JSON.
func backfill(ctx context.Context, tx *Tx, t Table, added []columnInfo) error {
	if len(added) == 0 {
		return nil
	}
	rows, err := tx.Q.Query(ctx, "SELECT id, doc FROM "+t.table())
	if err != nil {
		return err
	}
	type stored struct {
		id  int64
		doc []byte
	}
	var all []stored
	for rows.Next() {
		var s stored
		if err := rows.Scan(&s.id, &s.doc); err != nil {
			rows.Close()
			return err
		}
		all = append(all, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range all {
		var (
			sets []string
			args []any
		)
		for _, c := range added {
			v, err := c.value(s.doc)
			if err != nil {
				return fmt.Errorf("document %s%d: %w", t.prefix(), s.id, err)
			}
			sets, args = append(sets, c.name+" = ?"), append(args, v)
		}
		if _, err := tx.Q.Exec(ctx, "UPDATE "+t.table()+" SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, s.id)...); err != nil {
			return err
		}
	}
	return nil
}
