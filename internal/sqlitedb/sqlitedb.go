// Package sqlitedb opens freshen's SQLite files (the ledger and the
// embedded index) with one set of settings, and encodes vectors for BLOB
// columns. Pure Go: modernc.org/sqlite, no cgo.
package sqlitedb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/freshen-io/freshen"
)

// Open opens (creating if needed) the database at path and applies schema.
//
// WAL lets readers (freshen search, status) work while a writer commits;
// synchronous=NORMAL in WAL mode survives a killed process, only an OS
// crash can drop the last transactions; transactions start IMMEDIATE so
// two writers queue on the busy timeout instead of failing to upgrade.
func Open(ctx context.Context, path, schema string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(20000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema: %w", NoSpace(err, path))
	}
	return db, nil
}

// NoSpace wraps err with freshen.ErrNoSpace when it says the disk is
// full: SQLITE_FULL, ENOSPC, or an SQLite I/O error (a WAL or shared-
// memory file that could not grow) while the file system holding path
// has (almost) no space left. Other errors are returned unchanged.
func NoSpace(err error, path string) error {
	if err == nil || errors.Is(err, freshen.ErrNoSpace) {
		return err
	}
	var se *sqlite.Error
	isSQLite := errors.As(err, &se)
	switch {
	case errors.Is(err, syscall.ENOSPC), isSQLite && se.Code()&0xff == sqlite3.SQLITE_FULL:
	case isSQLite && se.Code()&0xff == sqlite3.SQLITE_IOERR && lowOnSpace(path):
	default:
		return err
	}
	return fmt.Errorf("%w: %w", freshen.ErrNoSpace, err)
}

// lowOnSpace reports whether the file system holding path has less than
// 1 MiB left for this process.
func lowOnSpace(path string) bool {
	var st syscall.Statfs_t
	if syscall.Statfs(filepath.Dir(path), &st) != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) < 1<<20
}

// escapePath makes path safe inside a SQLite URI filename, where "?"
// starts the parameters, "#" a fragment and "%" an escape: a data-dir
// named "a?b" must not open "a" with a parameter "b".
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// EncodeVector stores a vector as little-endian float32.
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// DecodeVector reads a vector written by EncodeVector.
func DecodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}
