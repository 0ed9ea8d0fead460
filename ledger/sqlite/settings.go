package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	err := l.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, settingPrefix+name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqlite: setting %s: %w", name, err)
	}
	return v, true, nil
}

// SwapSetting implements freshen.Settings.
func (l *Ledger) SwapSetting(ctx context.Context, name, old string, oldOK bool, value string) (bool, error) {
	var res sql.Result
	var err error
	if oldOK {
		res, err = l.db.ExecContext(ctx, `UPDATE meta SET v = ? WHERE k = ? AND v = ?`, value, settingPrefix+name, old)
	} else {
		res, err = l.db.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING`, settingPrefix+name, value)
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: set %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Purge implements freshen.Purger.
func (l *Ledger) Purge(ctx context.Context) error {
	return l.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range []string{"queue", "intents", "chunks", "objects", "embeddings"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
				return fmt.Errorf("sqlite: purge %s: %w", t, err)
			}
		}
		return nil
	})
}
