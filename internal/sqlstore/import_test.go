package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
)

// TestImportAndExportUsers: an imported user is stored with its
// user.created event in one transaction, a duplicate email is a conflict
// that leaves no event, and the export pages through the password
// accounts oldest first.
func TestImportAndExportUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var ids []uuid.UUID
		for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			u := &domain.User{ID: uuid.New(), Email: email, EmailVerified: true, PasswordHash: "$2b$04$x", ExternalID: "legacy",
				CreatedAt: now.Add(time.Duration(i) * time.Minute), UpdatedAt: now}
			if err := s.ImportUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		dup := &domain.User{ID: uuid.New(), Email: "b@example.com", CreatedAt: now, UpdatedAt: now}
		if err := s.ImportUser(ctx, dup); domain.ErrorCode(err) != domain.CodeConflict {
			t.Fatalf("duplicate: %v", err)
		}
		var n int
		if err := s.DB().QueryRow(`SELECT COUNT(*) FROM outbound_events WHERE type = 'user.created'`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("user.created events: %d %v", n, err)
		}
		got, err := s.UserByEmail(ctx, "a@example.com")
		if err != nil || got.PasswordHash != "$2b$04$x" || got.ExternalID != "legacy" || !got.EmailVerified || got.VerifiedAt != nil {
			t.Fatalf("imported user: %+v %v", got, err)
		}
		page, err := s.ExportUsers(ctx, nil, 2)
		if err != nil || len(page) != 2 || page[0].ID != ids[0] || page[1].ID != ids[1] {
			t.Fatalf("first page: %+v %v", page, err)
		}
		rest, err := s.ExportUsers(ctx, &domain.Cursor{CreatedAt: page[1].CreatedAt, ID: page[1].ID}, 2)
		if err != nil || len(rest) != 1 || rest[0].ID != ids[2] {
			t.Fatalf("second page: %+v %v", rest, err)
		}
	})
}

// TestImpersonationSessions: a session stored without a refresh token
// keeps its operator, and never gains assurance.
func TestImpersonationSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "ada@example.com")
		actor := uuid.New()
		sess := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(15 * time.Minute),
			AbsoluteExpiresAt: now.Add(15 * time.Minute), AAL: domain.AAL1, AMR: []string{domain.AMRImpersonation}, ActorID: &actor}
		if err := s.CreateSession(ctx, sess, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.SessionByID(ctx, sess.ID)
		if err != nil || got.ActorID == nil || *got.ActorID != actor {
			t.Fatalf("session: %+v %v", got, err)
		}
		if _, err := s.SetSessionAssurance(ctx, u.ID, sess.ID, domain.AAL2, []string{"otp"}, nil, now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("an impersonation session rose to aal2: %v", err)
		}
	})
}
