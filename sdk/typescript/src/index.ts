export { LatchClient, createLatchClient } from './client.js';
export type {
  CreateAPIKeyRequest, ExchangeRequest, ExchangeResponse, LatchClientOptions, LatchEvents, LogoutScope,
  MFAEnrollment, MFAFactor, MFAFactorList, MFAFactorType, MFAPending, RefreshPolicy, RetryPolicy, Schemas,
  Session, SessionList, SignInResult, SignupPending, TokenResponse, TOTPEnrollment, User, WebAuthnCredential,
} from './client.js';
export { LatchError, NotLoggedInError, RefreshBackoffError, SessionEndedError } from './errors.js';
export type { ErrorBody, ErrorCode, SessionEndReason } from './errors.js';
export { memoryStorage } from './storage.js';
export type { StorageLike, StorageOption, Tokens } from './storage.js';
export type { paths, components, operations as Operations } from './schema.gen.js';
