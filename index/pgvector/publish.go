package pgvector

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/freshen-io/freshen"
)

var (
	_ freshen.Publisher = (*Index)(nil)
	_ freshen.Dropper   = (*Index)(nil)
)

// Publish implements freshen.Publisher with a view (name, or
// schema.name) selecting every column of this index's table. Replacing
// drops and recreates the view in one transaction: readers see the old
// table or the new one, never neither (their vector columns may differ
// in dimension, which CREATE OR REPLACE VIEW refuses).
func (x *Index) Publish(ctx context.Context, name string, replace bool) error {
	schema, view, err := parseTable(name)
	if err != nil {
		return err
	}
	q := quote(schema, view)
	err = pgx.BeginFunc(ctx, x.pool, func(tx pgx.Tx) error {
		// One switch at a time (two processes publishing at once).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "freshen-publish:"+name); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, q).Scan(&exists); err != nil {
			return err
		}
		if exists && !replace {
			return nil
		}
		if exists {
			if _, err := tx.Exec(ctx, `DROP VIEW `+q); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `CREATE VIEW `+q+` AS SELECT * FROM `+x.table)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgvector: publish %s as view %s: %w", x.name, name, err)
	}
	return nil
}

// Drop implements freshen.Dropper: the table, its fences and its meta.
func (x *Index) Drop(ctx context.Context) error {
	if _, err := x.pool.Exec(ctx, `DROP TABLE IF EXISTS `+x.table+`, `+x.fence+`, `+x.meta); err != nil {
		return fmt.Errorf("pgvector: drop %s: %w", x.name, err)
	}
	return nil
}
