export { LatchClient, MFA, createLatchClient } from './client.js';
export type {
  APIKeyWithSecret, CreateAPIKeyRequest, ExchangeRequest, ExchangeResponse, LatchClientOptions, LatchEvents, LogoutScope,
  MFAEnrollment, MFAFactor, MFAFactorList, MFAFactorType, MFAPending, RefreshPolicy, RetryPolicy, Schemas,
  Session, SessionList, SignInResult, SignupPending, SignupResult, TokenResponse, TOTPEnrollment, User, WebAuthnCredential,
} from './client.js';
export { LatchError, NetworkError, NotLoggedInError, ProviderSignInError, RefreshBackoffError, SessionEndedError } from './errors.js';
export type { ErrorBody, ErrorCode, SessionEndReason } from './errors.js';
export { memoryStorage } from './storage.js';
export type { LockingStorage, StorageLike, StorageOption, Tokens } from './storage.js';
export type { paths, components, operations as Operations } from './schema.gen.js';
