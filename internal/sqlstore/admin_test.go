package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
)

// outboundOf returns the outbound events stored for the user, oldest first.
func outboundOf(t *testing.T, s *sqlstore.Store, userID uuid.UUID) []domain.OutboundEvent {
	t.Helper()
	q := `SELECT type, data FROM outbound_events WHERE user_id = ? ORDER BY seq`
	if s.Dialect() == sqlstore.Postgres {
		q = `SELECT type, data FROM outbound_events WHERE user_id = $1 ORDER BY seq`
	}
	rows, err := s.DB().Query(q, userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []domain.OutboundEvent
	for rows.Next() {
		var e domain.OutboundEvent
		var data []byte
		if err := rows.Scan(&e.Type, &data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &e.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestAdminChangesEmitInTheirTransaction: an update writes the events its
// function returns, a failed one writes nothing; ending sessions, removing
// factors and deleting a user each write theirs.
func TestAdminChangesEmitInTheirTransaction(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, sess, _ := newUser(t, s, "ada@example.com")
		newUser(t, s, "bob@example.com")
		until := now.Add(time.Hour)
		got, err := s.UpdateUser(ctx, u.ID, now, func(x *domain.User) ([]domain.OutboundEvent, error) {
			x.BannedUntil, x.BanReason, x.AppMetadata = &until, "fraud", json.RawMessage(`{"plan":"pro"}`)
			return []domain.OutboundEvent{{Type: domain.OutUserBanned, UserID: &x.ID, CreatedAt: now, Data: map[string]any{"user_id": x.ID.String()}}}, nil
		})
		if err != nil || !got.Banned(now) || got.BanReason != "fraud" {
			t.Fatalf("update: %+v %v", got, err)
		}
		read, err := s.UserByID(ctx, u.ID)
		if err != nil || read.BannedUntil == nil || !read.BannedUntil.Equal(until) || string(read.AppMetadata) == "" {
			t.Fatalf("read back: %+v %v", read, err)
		}
		var m map[string]any
		if json.Unmarshal(read.AppMetadata, &m) != nil || m["plan"] != "pro" {
			t.Fatalf("app_metadata: %s", read.AppMetadata)
		}
		// Taking another account's email fails and emits nothing.
		_, err = s.UpdateUser(ctx, u.ID, now, func(x *domain.User) ([]domain.OutboundEvent, error) {
			x.Email = "bob@example.com"
			return []domain.OutboundEvent{{Type: domain.OutUserUpdated, UserID: &x.ID, CreatedAt: now}}, nil
		})
		if !domain.IsCode(err, domain.CodeEmailTaken) {
			t.Fatalf("taken email: %v", err)
		}
		if evs := outboundOf(t, s, u.ID); len(evs) != 1 || evs[0].Type != domain.OutUserBanned {
			t.Fatalf("events after a failed update: %+v", evs)
		}
		if _, err := s.UpdateUser(ctx, uuid.New(), now, func(*domain.User) ([]domain.OutboundEvent, error) { return nil, nil }); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("unknown user: %v", err)
		}

		ids, err := s.EndUserSessions(ctx, u.ID, "operator", now)
		if err != nil || len(ids) != 1 || ids[0] != sess.ID {
			t.Fatalf("end sessions: %v %v", ids, err)
		}
		evs := outboundOf(t, s, u.ID)
		if last := evs[len(evs)-1]; last.Type != domain.OutSessionRevoked || last.Data["count"] != float64(1) {
			t.Fatalf("session.revoked: %+v", last)
		}
		// Nothing left to end: no event.
		if ids, err := s.EndUserSessions(ctx, u.ID, "operator", now); err != nil || len(ids) != 0 || len(outboundOf(t, s, u.ID)) != len(evs) {
			t.Fatalf("again: %v %v", ids, err)
		}

		f := &domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorTOTP, Name: "Phone", VerifiedAt: &now, CreatedAt: now, TOTPSecret: []byte("sealed")}
		if err := s.CreateFactor(ctx, f); err != nil {
			t.Fatal(err)
		}
		removed, err := s.RemoveFactors(ctx, u.ID, nil, nil, now)
		if err != nil || len(removed) != 1 || removed[0].ID != f.ID {
			t.Fatalf("remove factors: %v %v", removed, err)
		}
		if fs, _ := s.ListFactors(ctx, u.ID); len(fs) != 0 {
			t.Fatalf("factors left: %v", fs)
		}
		id := uuid.New()
		if _, err := s.RemoveFactors(ctx, u.ID, &id, nil, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("unknown factor: %v", err)
		}

		if _, err := s.DeleteUser(ctx, u.ID, false, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByID(ctx, u.ID); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("deleted user: %v", err)
		}
		var types []string
		for _, e := range outboundOf(t, s, u.ID) {
			types = append(types, e.Type)
		}
		want := []string{domain.OutUserBanned, domain.OutSessionRevoked, domain.OutMFAFactorRemoved, domain.OutUserDeleted}
		if len(types) != len(want) {
			t.Fatalf("events: %v, want %v", types, want)
		}
		for i := range want {
			if types[i] != want[i] {
				t.Fatalf("events: %v, want %v", types, want)
			}
		}
		if _, err := s.DeleteUser(ctx, u.ID, false, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("twice: %v", err)
		}
	})
}
