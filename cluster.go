package freshen

import (
	"context"
	"time"
)

// Notifier is implemented by ledgers that announce enqueued changes, so
// that an idle worker in any process wakes at once instead of at its next
// poll.
type Notifier interface {
	// Changes returns a channel that receives (coalesced) after changes
	// are enqueued anywhere, until ctx is done; then it is closed.
	Changes(ctx context.Context) (<-chan struct{}, error)
}

// CommitNotifier is implemented by ledgers that several processes share
// and that announce commits: a process's read-your-writes waiters wake
// when any process commits the key they wait for, without polling.
type CommitNotifier interface {
	// Commits returns a channel of the keys committed anywhere, until
	// ctx is done (then it is closed). It is best effort: keys may be
	// dropped under load or while reconnecting.
	Commits(ctx context.Context) (<-chan string, error)
}

// Lead is a held leadership (see Coordinator.TryLead).
type Lead interface {
	// Check reports whether the leadership is still held (its
	// connection alive); after an error it is lost for good.
	Check(ctx context.Context) error
	// Release gives it up.
	Release()
}

// Coordinator is implemented by ledgers that several processes share: it
// elects one process for a job and keeps a registry of the processes.
type Coordinator interface {
	// TryLead makes this process the one running job (e.g. "reconcile
	// docs") if no other holds it. A leadership lasts until Release or
	// until the process dies (its connection drops): another process then
	// gets it at its next try.
	TryLead(ctx context.Context, job string) (lead Lead, ok bool, err error)
	// Heartbeat records p as alive now.
	Heartbeat(ctx context.Context, p Process) error
	// Processes lists the processes seen since the given time, and who
	// leads each job.
	Processes(ctx context.Context, since time.Time) ([]Process, error)
}

// Process is one freshen process sharing a ledger.
type Process struct {
	Owner    string    `json:"owner"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	// Leads are the jobs it leads.
	Leads []string `json:"leads,omitempty"`
}
