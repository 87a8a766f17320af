export { LatchClient, MFA, createLatchClient } from './client.js';
export type {
  APIKeyWithSecret, CreateAPIKeyRequest, ExchangeRequest, ExchangeResponse, LatchClientOptions, LatchEvents, LogoutScope,
  MFAEnrollment, MFAFactor, MFAFactorList, MFAFactorType, MFAPending, RefreshPolicy, RetryPolicy, Schemas,
  Session, SessionList, SignInResult, SignInWithOtpRequest, SignupPending, SignupResult, TokenResponse, TOTPEnrollment, User,
  VerifyOtpRequest, WebAuthnCredential,
} from './client.js';
export { LatchAdmin } from './admin.js';
export type {
  AdminUser, AdminUserDetail, AdminUserExport, AdminUserList, AdminUserUpdate, CreateWebhookRequest, EventFilter, ExportedUser,
  ImpersonationToken, ImportUser, ImportUsersResult, LatchAdminOptions, OutboundEvent, OutboundEventPage, OutboundEventType,
  UpdateWebhookRequest, UserFilter, WebhookDeliveryList, WebhookEndpoint, WebhookEndpointList, WebhookEndpointWithSecret, WebhookSecret,
} from './admin.js';
export { LatchError, NetworkError, NotLoggedInError, ProviderSignInError, RefreshBackoffError, SessionEndedError } from './errors.js';
export type { ErrorBody, ErrorCode, SessionEndReason } from './errors.js';
export { memoryStorage } from './storage.js';
export type { LockingStorage, StorageLike, StorageOption, Tokens } from './storage.js';
export type { paths, components, operations as Operations } from './schema.gen.js';
