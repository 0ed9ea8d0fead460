package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/freshen-io/freshen"
)

var (
	_ freshen.Settings = (*Ledger)(nil)
	_ freshen.Purger   = (*Ledger)(nil)
)

// settingPrefix keeps settings apart from the ledger's own meta rows.
const settingPrefix = "setting:"

// Setting implements freshen.Settings.
func (l *Ledger) Setting(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := l.pool.QueryRow(ctx, `SELECT v FROM meta WHERE k = $1`, settingPrefix+name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("postgres: setting %s: %w", name, classify(err))
	}
	return v, true, nil
}

// SwapSetting implements freshen.Settings.
func (l *Ledger) SwapSetting(ctx context.Context, name, old string, oldOK bool, value string) (bool, error) {
	q, args := `INSERT INTO meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING`, []any{settingPrefix + name, value}
	if oldOK {
		q, args = `UPDATE meta SET v = $2 WHERE k = $1 AND v = $3`, append(args, old)
	}
	tag, err := l.pool.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("postgres: set %s: %w", name, classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// Purge implements freshen.Purger.
func (l *Ledger) Purge(ctx context.Context) error {
	return l.tx(ctx, "purge", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `TRUNCATE queue, intents, chunks, objects, embeddings`)
		return err
	})
}
