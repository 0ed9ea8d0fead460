package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/ledger/internal/codec"
	"github.com/jackc/pgx/v5"
)

var (
	_ freshen.Notifier    = (*Ledger)(nil)
	_ freshen.Coordinator = (*Ledger)(nil)
)

// dedicated takes a connection out of the pool for good (LISTEN and
// session-level advisory locks live as long as one connection).
func (l *Ledger) dedicated(ctx context.Context) (*pgx.Conn, error) {
	c, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return c.Hijack(), nil
}

// Changes implements freshen.Notifier with LISTEN on the schema's
// channel. A lost connection is reopened (with backoff), and the channel
// receives then too, since notifications may have been missed.
func (l *Ledger) Changes(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	signal := func(string) {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	// A reconnect signals too: notifications may have been missed.
	if err := l.follow(ctx, channel(l.schema), signal, func() { signal("") }, func() { close(out) }); err != nil {
		return nil, err
	}
	return out, nil
}

// follow LISTENs on ch and calls on with each notification's payload
// (and reconnected after a new connection replaced a lost one) until
// ctx is done; then it calls done.
func (l *Ledger) follow(ctx context.Context, ch string, on func(payload string), reconnected, done func()) error {
	conn, err := l.listenOn(ctx, ch)
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", classify(err))
	}
	go func() {
		defer done()
		backoff := 100 * time.Millisecond
		for {
			if conn == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				if conn, err = l.listenOn(ctx, ch); err != nil {
					conn, backoff = nil, min(2*backoff, 10*time.Second)
					continue
				}
				backoff = 100 * time.Millisecond
				reconnected()
			}
			n, err := conn.WaitForNotification(ctx)
			if ctx.Err() != nil {
				conn.Close(context.Background())
				return
			}
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				continue
			}
			on(n.Payload)
		}
	}()
	return nil
}

func (l *Ledger) listen(ctx context.Context) (*pgx.Conn, error) {
	return l.listenOn(ctx, channel(l.schema))
}

func (l *Ledger) listenOn(ctx context.Context, ch string) (*pgx.Conn, error) {
	conn, err := l.dedicated(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

var _ freshen.CommitNotifier = (*Ledger)(nil)

// Commits implements freshen.CommitNotifier with LISTEN/NOTIFY: Complete
// notifies the committed key in its transaction, so a key arrives once
// its commit is visible. Keys are dropped when the reader falls behind
// by more than 1,024, and while the connection is re-established.
func (l *Ledger) Commits(ctx context.Context) (<-chan string, error) {
	out := make(chan string, 1024)
	send := func(key string) {
		select {
		case out <- key:
		default:
		}
	}
	if err := l.follow(ctx, commitChannel(l.schema), send, func() {}, func() { close(out) }); err != nil {
		return nil, err
	}
	return out, nil
}

// lead is a session-level advisory lock on a connection of its own.
type lead struct {
	mu   sync.Mutex
	conn *pgx.Conn
	job  string
	l    *Ledger
}

// TryLead implements freshen.Coordinator with pg_try_advisory_lock on a
// dedicated connection: the lock is PostgreSQL's, so a process that dies
// (its connection dropped) frees it at once.
func (l *Ledger) TryLead(ctx context.Context, job string) (freshen.Lead, bool, error) {
	conn, err := l.dedicated(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: lead %s: %w", job, classify(err))
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, l.schema+":"+job).Scan(&ok); err != nil {
		conn.Close(context.Background())
		return nil, false, fmt.Errorf("postgres: lead %s: %w", job, classify(err))
	}
	if !ok {
		conn.Close(context.Background())
		return nil, false, nil
	}
	return &lead{conn: conn, job: job, l: l}, true, nil
}

func (d *lead) Check(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return errors.New("leadership released")
	}
	if err := d.conn.Ping(ctx); err != nil {
		d.conn.Close(context.Background())
		d.conn = nil
		return fmt.Errorf("postgres: leadership of %s lost: %w", d.job, err)
	}
	return nil
}

func (d *lead) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		// Unlock first, so that the lock is free when Release returns
		// (the server frees a closed session's locks only as it notices
		// the close); closing the session frees it anyway.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, d.l.schema+":"+d.job)
		cancel()
		d.conn.Close(context.Background())
		d.conn = nil
	}
}

// Heartbeat implements freshen.Coordinator; it also forgets processes
// not seen for a day.
func (l *Ledger) Heartbeat(ctx context.Context, p freshen.Process) error {
	if p.Leads == nil {
		p.Leads = []string{}
	}
	_, err := l.pool.Exec(ctx, `INSERT INTO processes (owner, host, pid, started, last_seen, leads) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (owner) DO UPDATE SET host = excluded.host, pid = excluded.pid, last_seen = excluded.last_seen, leads = excluded.leads`,
		p.Owner, p.Host, p.PID, codec.Nanos(p.Started), codec.Nanos(l.now()), p.Leads)
	if err == nil {
		// Forget processes not seen for a day.
		_, err = l.pool.Exec(ctx, `DELETE FROM processes WHERE last_seen < $1`, codec.Nanos(l.now().Add(-24*time.Hour)))
	}
	if err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", classify(err))
	}
	return nil
}

// Processes implements freshen.Coordinator. It only reads: status asks
// for it every second.
func (l *Ledger) Processes(ctx context.Context, since time.Time) ([]freshen.Process, error) {
	rows, err := l.pool.Query(ctx, `SELECT owner, host, pid, started, last_seen, leads FROM processes WHERE last_seen >= $1 ORDER BY owner`, codec.Nanos(since))
	if err != nil {
		return nil, fmt.Errorf("postgres: processes: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (freshen.Process, error) {
		var p freshen.Process
		var started, seen int64
		err := r.Scan(&p.Owner, &p.Host, &p.PID, &started, &seen, &p.Leads)
		p.Started, p.LastSeen = codec.FromNanos(started), codec.FromNanos(seen)
		if len(p.Leads) == 0 {
			p.Leads = nil
		}
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: processes: %w", classify(err))
	}
	return out, nil
}
