package service

import (
	"context"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// outboundStore is what reading the outbound events feed needs of the
// store.
type outboundStore interface {
	// ListOutboundEvents returns up to f.Limit events after f.After in
	// ascending seq, never skipping one (see sqlstore.ListOutboundEvents).
	ListOutboundEvents(ctx context.Context, f domain.OutboundFilter) ([]domain.OutboundEvent, error)
}

// OutboundPage is a page of the outbound events feed.
type OutboundPage struct {
	Events []domain.OutboundEvent
	// Next is the seq to continue after: the last event's, or the filter's
	// After for an empty page.
	Next int64
	// More tells whether more events were ready when the page was read.
	More bool
}

// listOutbound reads a page of the feed (f.Limit 0: the default page
// size): one event more than the limit, to tell whether more are ready.
// Returns CodeInvalidRequest for a limit out of range or a negative after.
func listOutbound(ctx context.Context, store outboundStore, f domain.OutboundFilter) (*OutboundPage, error) {
	if f.Limit == 0 {
		f.Limit = DefaultPageLimit
	}
	if f.Limit < 1 || f.Limit > MaxPageLimit {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "limit must be between 1 and %d", MaxPageLimit)
	}
	if f.After < 0 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "after must not be negative")
	}
	limit := f.Limit
	f.Limit++
	evs, err := store.ListOutboundEvents(ctx, f)
	if err != nil {
		return nil, err
	}
	p := &OutboundPage{Events: evs, Next: f.After}
	if len(evs) > limit {
		p.Events, p.More = evs[:limit], true
	}
	if n := len(p.Events); n > 0 {
		p.Next = p.Events[n-1].Seq
	}
	return p, nil
}

// ListOutboundEvents returns a page of the whole outbound events feed, for
// operators: the HTTP layer lets only operators call it (the operation's
// admin scope), so it checks nothing more.
func (e *Events) ListOutboundEvents(ctx context.Context, f domain.OutboundFilter) (*OutboundPage, error) {
	return listOutbound(ctx, e.store, f)
}

// ListOrgOutboundEvents returns a page of the organization's outbound
// events. Needs events:read in the organization (owners and admins, or an
// organization key holding it; see orgAccess); returns CodeNotFound for an
// organization the principal cannot see.
func (o *Orgs) ListOrgOutboundEvents(ctx context.Context, p *domain.Principal, orgID uuid.UUID, f domain.OutboundFilter) (*OutboundPage, error) {
	a, err := o.orgAccess(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	if err := a.require(domain.ScopeEventsRead); err != nil {
		return nil, err
	}
	f.OrgID = &orgID
	return listOutbound(ctx, o.store, f)
}
