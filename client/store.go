package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// Tokens are the credentials of a session (or of an exchanged API key).
// Times are on the Client's clock: ExpiresAt is when the Client received the
// token plus its expires_in, so a skewed server clock does not matter.
type Tokens struct {
	AccessToken string `json:"access_token"`
	// RefreshToken is empty for tokens exchanged from an API key.
	RefreshToken string `json:"refresh_token,omitempty"`
	// IssuedAt is when the Client received the access token.
	IssuedAt time.Time `json:"issued_at"`
	// ExpiresAt is when the access token expires.
	ExpiresAt time.Time `json:"expires_at"`
	SessionID string    `json:"session_id,omitempty"`
	UserID    string    `json:"user_id,omitempty"`
	// Scope is the space-separated scopes of an exchanged token.
	Scope string `json:"scope,omitempty"`
}

// clone returns a copy that the caller may keep.
func (t *Tokens) clone() *Tokens {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// TokenStore keeps a session's tokens between requests, and with a
// persistent implementation between runs. Implementations must be safe for
// concurrent use.
type TokenStore interface {
	// Load returns the stored tokens, or nil and no error when there are none.
	Load(ctx context.Context) (*Tokens, error)
	// Save replaces the stored tokens.
	Save(ctx context.Context, t *Tokens) error
	// Clear removes the stored tokens; clearing an empty store is no error.
	Clear(ctx context.Context) error
}

// TokenLocker is implemented by stores that several processes share. The
// Client holds the lock around every refresh and re-loads the store under
// it: when another process has already rotated the refresh token, the
// Client takes the new tokens instead of refreshing again, so no process
// ever presents a refresh token that another one has spent.
type TokenLocker interface {
	// LockTokens blocks until the lock is held or ctx ends, and returns the
	// function that releases it.
	LockTokens(ctx context.Context) (unlock func(), err error)
}

// MemoryStore is a TokenStore in memory, the default. The zero value is
// ready to use.
type MemoryStore struct {
	mu sync.Mutex
	t  *Tokens
}

var _ TokenStore = (*MemoryStore)(nil)

// Load returns the tokens, or nil when there are none.
func (m *MemoryStore) Load(context.Context) (*Tokens, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t.clone(), nil
}

// Save replaces the tokens.
func (m *MemoryStore) Save(_ context.Context, t *Tokens) error {
	m.mu.Lock()
	m.t = t.clone()
	m.mu.Unlock()
	return nil
}

// Clear forgets the tokens.
func (m *MemoryStore) Clear(context.Context) error {
	m.mu.Lock()
	m.t = nil
	m.mu.Unlock()
	return nil
}

// FileStore is a TokenStore in a JSON file, readable by its owner only
// (0600). Writes are atomic (a temporary file renamed over the old one), and
// an advisory lock on a sibling file (path + ".lock") lets several processes
// share one file: see TokenLocker.
type FileStore struct {
	path string
}

var (
	_ TokenStore  = (*FileStore)(nil)
	_ TokenLocker = (*FileStore)(nil)
)

// NewFileStore returns a store in the file at path. The file and its
// directory (0700) are created on the first Save.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Path returns the file's path.
func (f *FileStore) Path() string { return f.path }

// fileVersion is written into the file so that a later SDK can migrate it.
const fileVersion = 1

type fileTokens struct {
	Version int `json:"version"`
	Tokens
}

// Load reads the file. Returns nil and no error when it does not exist, and
// an error when it cannot be read or parsed.
func (f *FileStore) Load(context.Context) (*Tokens, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latch: read token file: %w", err)
	}
	var ft fileTokens
	if err := json.Unmarshal(b, &ft); err != nil {
		return nil, fmt.Errorf("latch: token file %s: %w", f.path, err)
	}
	if ft.Version > fileVersion {
		return nil, fmt.Errorf("latch: token file %s has version %d; this SDK reads %d", f.path, ft.Version, fileVersion)
	}
	if ft.AccessToken == "" && ft.RefreshToken == "" {
		return nil, nil
	}
	return &ft.Tokens, nil
}

// Save writes the tokens to a temporary file in the same directory, syncs
// it, and renames it over the file, so that readers see the old or the new
// tokens and never a torn write.
func (f *FileStore) Save(_ context.Context, t *Tokens) error {
	if t == nil {
		return f.Clear(context.Background())
	}
	b, err := json.MarshalIndent(fileTokens{Version: fileVersion, Tokens: *t}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("latch: token directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("latch: write token file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("latch: write token file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("latch: write token file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("latch: write token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("latch: write token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("latch: write token file: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable where the platform allows it.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

// Clear removes the file.
func (f *FileStore) Clear(context.Context) error {
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("latch: remove token file: %w", err)
	}
	return nil
}

// LockTokens takes an exclusive advisory lock on path + ".lock", waiting
// until ctx ends. The lock file is separate because Save replaces the token
// file (and so its inode) on every write.
func (f *FileStore) LockTokens(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return nil, fmt.Errorf("latch: token directory: %w", err)
	}
	l := flock.New(f.path+".lock", flock.SetPermissions(0o600))
	ok, err := l.TryLockContext(ctx, 10*time.Millisecond)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("latch: lock token file: %w", err)
	}
	if !ok {
		l.Close()
		return nil, fmt.Errorf("latch: lock token file: %w", context.Cause(ctx))
	}
	return func() { _ = l.Close() }, nil
}
