package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/latchauth/latch/client/latchapi"
)

// Admin groups the operators' operations: the users of the deployment,
// its webhooks and its outbound events (docs/admin.md, docs/webhooks.md,
// docs/events.md). Latch allows them to an operator only (listed in
// LATCH_OPERATOR_EMAILS, email verified before the key was created),
// through a personal API key with the admin scopes (NewAdmin, or a Client
// made WithAPIKey) or an aal2 session: anyone else gets an *Error matching
// ErrInsufficientPermissions, an operator's aal1 session one matching
// ErrMFARequired. Get it with NewAdmin or Client.Admin.
type Admin struct{ c *Client }

// Admin returns the Client's operator operations, authenticated as the
// Client is.
func (c *Client) Admin() *Admin { return c.admin }

// NewAdmin returns the operator operations of a Client that sends apiKey,
// an operator's personal API key, on every request (WithAPIKey): no user
// session is involved. opts are the Client's other options.
func NewAdmin(baseURL, apiKey string, opts ...Option) (*Admin, error) {
	c, err := New(baseURL, append(append([]Option(nil), opts...), WithAPIKey(apiKey))...)
	if err != nil {
		return nil, err
	}
	return c.Admin(), nil
}

// Client returns the Client the operations go through (for c.API()).
func (a *Admin) Client() *Client { return a.c }

// Generated models of the admin API.
type (
	// UserId names a user.
	UserId = latchapi.UserId
	// WebhookId names a webhook endpoint.
	WebhookId = latchapi.WebhookId
	// MessageId names a webhook message.
	MessageId = latchapi.MessageId
	// AdminUser is a user as operators see it.
	AdminUser = latchapi.AdminUser
	// AdminUserDetail is a user with its sessions, factors and organizations.
	AdminUserDetail = latchapi.AdminUserDetail
	// AdminUserList is a page of users.
	AdminUserList = latchapi.AdminUserList
	// AdminUserUpdate is a PATCH of a user: absent fields are unchanged.
	AdminUserUpdate = latchapi.AdminUserUpdate
	// AdminUserExport is everything Latch holds about one user.
	AdminUserExport = latchapi.AdminUserExport
	// ImportUser is one user to import (a password hash in PHC or bcrypt form).
	ImportUser = latchapi.ImportUser
	// ImportUsersResult says what an import created or refused, user by user.
	ImportUsersResult = latchapi.ImportUsersResult
	// ExportedUser is one user of the bulk export.
	ExportedUser = latchapi.ExportedUser
	// ImpersonationToken is a short-lived token acting as a user.
	ImpersonationToken = latchapi.ImpersonationToken
	// WebhookEndpoint is a webhook endpoint, without its secret.
	WebhookEndpoint = latchapi.WebhookEndpoint
	// WebhookEndpointWithSecret is a new endpoint; its secret is shown this once.
	WebhookEndpointWithSecret = latchapi.WebhookEndpointWithSecret
	// WebhookEndpointList is a page of endpoints.
	WebhookEndpointList = latchapi.WebhookEndpointList
	// CreateWebhookRequest is a new endpoint's URL, event types and state.
	CreateWebhookRequest = latchapi.CreateWebhookRequest
	// UpdateWebhookRequest changes an endpoint: absent fields are unchanged.
	UpdateWebhookRequest = latchapi.UpdateWebhookRequest
	// WebhookSecret is an endpoint's new signing secret.
	WebhookSecret = latchapi.WebhookSecret
	// WebhookDeliveryList is a page of delivery attempts.
	WebhookDeliveryList = latchapi.WebhookDeliveryList
	// OutboundEvent is one event of the feed (a union: see its As* methods
	// and Discriminator).
	OutboundEvent = latchapi.OutboundEvent
	// OutboundEventPage is a page of the events feed.
	OutboundEventPage = latchapi.OutboundEventPage
	// OutboundEventType is the type of an outbound event.
	OutboundEventType = latchapi.OutboundEventType
)

// UserFilter narrows ListUsers and IterUsers (every field set, together):
// the zero value lists every user, newest first; a nil Limit takes Latch's
// default page size. Its Cursor is ignored: ListUsers takes the cursor.
type UserFilter = latchapi.ListAdminUsersParams

// EventFilter says which events ListEvents returns: those after the seq
// After (0: from the oldest), of the Types (none: all), of the organization
// OrgID (nil: all), at most Limit a page (0: Latch's default).
type EventFilter struct {
	After int64
	Types []OutboundEventType
	OrgID *OrgId
	Limit int
}

// ok returns the typed body of a generated response, or its *Error.
func ok[T any](a *Admin, body *T, hr *http.Response, raw []byte, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, a.c.fail(hr, raw)
	}
	return body, nil
}

// done returns nil for a 2xx response, else its *Error.
func (a *Admin) done(hr *http.Response, raw []byte, err error) error {
	if err != nil {
		return err
	}
	if hr == nil {
		return errors.New("latch: no response")
	}
	if hr.StatusCode/100 != 2 {
		return a.c.fail(hr, raw)
	}
	return nil
}

// ListUsers returns one page of the users matching filter, starting at
// cursor ("" for the first page); the page's NextCursor is nil on the last.
func (a *Admin) ListUsers(ctx context.Context, filter UserFilter, cursor string) (*AdminUserList, error) {
	p := filter
	p.Cursor = nil
	if cursor != "" {
		p.Cursor = &cursor
	}
	r, err := a.c.api.ListAdminUsersWithResponse(ctx, &p)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// IterUsers yields every user matching filter, page after page; it stops
// at the first error, which it yields.
func (a *Admin) IterUsers(ctx context.Context, filter UserFilter) iter.Seq2[AdminUser, error] {
	return func(yield func(AdminUser, error) bool) {
		cursor := ""
		for {
			page, err := a.ListUsers(ctx, filter, cursor)
			if err != nil {
				yield(AdminUser{}, err)
				return
			}
			for _, u := range page.Users {
				if !yield(u, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			cursor = *page.NextCursor
		}
	}
}

// GetUser returns a user with its sessions, factors and organizations;
// an *Error matching ErrNotFound when there is none.
func (a *Admin) GetUser(ctx context.Context, id UserId) (*AdminUserDetail, error) {
	r, err := a.c.api.GetAdminUserWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// UpdateUser applies the fields set in u (email, email_verified, ban,
// app_metadata, user_metadata) and returns the user.
func (a *Admin) UpdateUser(ctx context.Context, id UserId, u AdminUserUpdate) (*AdminUser, error) {
	r, err := a.c.api.UpdateAdminUserWithResponse(ctx, id, u)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// BanUser bans the user until the given time (Latch ends its sessions and
// refuses its sign-ins, tokens and keys with user_banned), recording
// reason ("" for none).
func (a *Admin) BanUser(ctx context.Context, id UserId, until time.Time, reason string) (*AdminUser, error) {
	u := AdminUserUpdate{BannedUntil: nullable.NewNullableWithValue(until)}
	if reason != "" {
		u.BanReason = &reason
	}
	return a.UpdateUser(ctx, id, u)
}

// UnbanUser lifts the user's ban.
func (a *Admin) UnbanUser(ctx context.Context, id UserId) (*AdminUser, error) {
	return a.UpdateUser(ctx, id, AdminUserUpdate{BannedUntil: nullable.NewNullNullable[time.Time]()})
}

// DeleteUserOptions are DeleteUser's options.
type DeleteUserOptions struct {
	// DeleteSoleOwnedOrgs also deletes the organizations the user alone
	// owns; without it Latch refuses to delete such a user (409 conflict).
	DeleteSoleOwnedOrgs bool
}

// DeleteUser deletes the user.
func (a *Admin) DeleteUser(ctx context.Context, id UserId, opts DeleteUserOptions) error {
	p := &latchapi.DeleteAdminUserParams{}
	if opts.DeleteSoleOwnedOrgs {
		t := true
		p.DeleteSoleOwnedOrgs = &t
	}
	r, err := a.c.api.DeleteAdminUserWithResponse(ctx, id, p)
	if err != nil {
		return err
	}
	return a.done(r.HTTPResponse, r.Body, nil)
}

// EndSessions ends every session of the user.
func (a *Admin) EndSessions(ctx context.Context, id UserId) error {
	r, err := a.c.api.RevokeAdminUserSessionsWithResponse(ctx, id)
	if err != nil {
		return err
	}
	return a.done(r.HTTPResponse, r.Body, nil)
}

// RemoveFactors removes the user's second factor factor, or every one of
// them (recovery codes included) when factor is nil.
func (a *Admin) RemoveFactors(ctx context.Context, id UserId, factor *FactorId) error {
	if factor != nil {
		r, err := a.c.api.DeleteAdminUserFactorWithResponse(ctx, id, *factor)
		if err != nil {
			return err
		}
		return a.done(r.HTTPResponse, r.Body, nil)
	}
	r, err := a.c.api.DeleteAdminUserFactorsWithResponse(ctx, id)
	if err != nil {
		return err
	}
	return a.done(r.HTTPResponse, r.Body, nil)
}

// ExportUser returns everything Latch holds about the user.
func (a *Admin) ExportUser(ctx context.Context, id UserId) (*AdminUserExport, error) {
	r, err := a.c.api.ExportAdminUserWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// ImportUsers creates the users, with their password hashes; the result
// says, user by user, what was created or refused.
func (a *Admin) ImportUsers(ctx context.Context, users []ImportUser) (*ImportUsersResult, error) {
	r, err := a.c.api.ImportUsersWithResponse(ctx, latchapi.ImportUsersRequest{Users: users})
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// ExportUsers yields every user of the deployment in export form, page
// after page; it stops at the first error, which it yields.
func (a *Admin) ExportUsers(ctx context.Context) iter.Seq2[ExportedUser, error] {
	return func(yield func(ExportedUser, error) bool) {
		p := &latchapi.ExportUsersParams{}
		for {
			r, err := a.c.api.ExportUsersWithResponse(ctx, p)
			var page *latchapi.ExportedUserPage
			if err == nil {
				page, err = ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
			}
			if err != nil {
				yield(ExportedUser{}, err)
				return
			}
			for _, u := range page.Users {
				if !yield(u, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" {
				return
			}
			p.Cursor = page.NextCursor
		}
	}
}

// Impersonate returns a short-lived token that acts as the user (Latch
// records who impersonated whom).
func (a *Admin) Impersonate(ctx context.Context, id UserId) (*ImpersonationToken, error) {
	r, err := a.c.api.ImpersonateUserWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// CreateWebhook creates an operators' webhook endpoint; its signing secret
// is in the result this once.
func (a *Admin) CreateWebhook(ctx context.Context, req CreateWebhookRequest) (*WebhookEndpointWithSecret, error) {
	r, err := a.c.api.CreateAdminWebhookWithResponse(ctx, req)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON201, r.HTTPResponse, r.Body, nil)
}

// ListWebhooks returns one page of the operators' endpoints, starting at
// cursor ("" for the first).
func (a *Admin) ListWebhooks(ctx context.Context, cursor string) (*WebhookEndpointList, error) {
	p := &latchapi.ListAdminWebhooksParams{}
	if cursor != "" {
		p.Cursor = &cursor
	}
	r, err := a.c.api.ListAdminWebhooksWithResponse(ctx, p)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// GetWebhook returns an endpoint.
func (a *Admin) GetWebhook(ctx context.Context, id WebhookId) (*WebhookEndpoint, error) {
	r, err := a.c.api.GetAdminWebhookWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// UpdateWebhook changes the fields set in req and returns the endpoint.
func (a *Admin) UpdateWebhook(ctx context.Context, id WebhookId, req UpdateWebhookRequest) (*WebhookEndpoint, error) {
	r, err := a.c.api.UpdateAdminWebhookWithResponse(ctx, id, req)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// DeleteWebhook deletes an endpoint.
func (a *Admin) DeleteWebhook(ctx context.Context, id WebhookId) error {
	r, err := a.c.api.DeleteAdminWebhookWithResponse(ctx, id)
	if err != nil {
		return err
	}
	return a.done(r.HTTPResponse, r.Body, nil)
}

// RotateWebhookSecret gives the endpoint a new signing secret, returned
// this once.
func (a *Admin) RotateWebhookSecret(ctx context.Context, id WebhookId) (*WebhookSecret, error) {
	r, err := a.c.api.RotateAdminWebhookSecretWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// TestWebhook queues a test message to the endpoint.
func (a *Admin) TestWebhook(ctx context.Context, id WebhookId) error {
	r, err := a.c.api.TestAdminWebhookWithResponse(ctx, id)
	if err != nil {
		return err
	}
	return a.done(r.HTTPResponse, r.Body, nil)
}

// ListDeliveries returns one page of the endpoint's delivery attempts,
// newest first, starting at cursor ("" for the first).
func (a *Admin) ListDeliveries(ctx context.Context, id WebhookId, cursor string) (*WebhookDeliveryList, error) {
	p := &latchapi.ListAdminWebhookDeliveriesParams{}
	if cursor != "" {
		p.Cursor = &cursor
	}
	r, err := a.c.api.ListAdminWebhookDeliveriesWithResponse(ctx, id, p)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// Redeliver queues the message to the endpoint once more.
func (a *Admin) Redeliver(ctx context.Context, id WebhookId, message MessageId) error {
	r, err := a.c.api.RedeliverAdminWebhookMessageWithResponse(ctx, id, message)
	if err != nil {
		return err
	}
	return a.done(r.HTTPResponse, r.Body, nil)
}

// ListEvents returns one page of the outbound events feed, oldest first.
// Pass the page's NextCursor as the next filter's After; an empty page
// keeps NextCursor at After.
func (a *Admin) ListEvents(ctx context.Context, f EventFilter) (*OutboundEventPage, error) {
	p := &latchapi.ListOutboundEventsParams{OrgId: f.OrgID}
	if f.After > 0 {
		p.After = &f.After
	}
	if len(f.Types) > 0 {
		types := f.Types
		p.Types = &types
	}
	if f.Limit > 0 {
		p.Limit = &f.Limit
	}
	r, err := a.c.api.ListOutboundEventsWithResponse(ctx, p)
	if err != nil {
		return nil, err
	}
	return ok(a, r.JSON200, r.HTTPResponse, r.Body, nil)
}

// IterEvents yields the events of the feed matching f, following
// NextCursor while pages say HasMore, and stops at the feed's end (poll
// again later from the last event's seq) or at the first error, which it
// yields.
func (a *Admin) IterEvents(ctx context.Context, f EventFilter) iter.Seq2[OutboundEvent, error] {
	return func(yield func(OutboundEvent, error) bool) {
		for {
			page, err := a.ListEvents(ctx, f)
			if err != nil {
				yield(OutboundEvent{}, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			if !page.HasMore || page.NextCursor == f.After {
				return
			}
			f.After = page.NextCursor
		}
	}
}
