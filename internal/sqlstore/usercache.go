package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// UserCacheTTL is how long CachedUserByID may answer from memory: the same
// bound as the service's session cache, so another instance's change shows
// within it. A change made through this store shows at once.
const UserCacheTTL = 2 * time.Second

// userCache holds recently read users for CachedUserByID. Every method of
// the store that writes a users row calls invalidate after its transaction,
// and a read fills the cache only if no invalidation happened since the
// read began (the generation), so a row read before a local change commits
// is never cached after it.
type userCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[uuid.UUID]cachedUser
}

type cachedUser struct {
	u     domain.User
	until time.Time
}

const userCacheMax = 100_000

func (c *userCache) get(id uuid.UUID, now time.Time) (*domain.User, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	u := e.u
	return &u, true
}

func (c *userCache) put(u *domain.User, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.m == nil || len(c.m) >= userCacheMax {
		c.m = map[uuid.UUID]cachedUser{}
	}
	c.m[u.ID] = cachedUser{u: *u, until: now.Add(UserCacheTTL)}
}

// invalidate forgets the users, or every user when ids is empty.
func (c *userCache) invalidate(ids ...uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if len(ids) == 0 {
		c.m = nil
		return
	}
	for _, id := range ids {
		delete(c.m, id)
	}
}

// CachedUserByID is UserByID for reads that may be up to UserCacheTTL old
// when the change was made elsewhere (GET /auth/me): a change through this
// store shows at once. Returns CodeNotFound if there is no such user.
func (s *Store) CachedUserByID(ctx context.Context, id uuid.UUID) (*domain.User, error) {
	now := time.Now()
	if u, ok := s.users.get(id, now); ok {
		return u, nil
	}
	gen := s.users.gen.Load()
	u, err := s.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.users.put(u, now, gen)
	return u, nil
}
