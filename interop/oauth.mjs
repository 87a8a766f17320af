// oauth.mjs: Latch with unmodified openid-client and jose (make test-interop).
// Discovery, client credentials (client_secret_basic and client_secret_post),
// introspection, revocation and token exchange through openid-client; the
// tokens verified by jose through the discovered jwks_uri with issuer and
// audience. Exits non-zero on the first failure.
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';

const base = process.argv[2];
assert.ok(base, 'usage: node oauth.mjs BASE_URL');
const say = (m) => console.log(`interop: ${m}`);

async function api(path, body, headers = {}) {
  const res = await fetch(base + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

// A user and a personal key (LATCH_AUTOCONFIRM_EMAIL counts the address verified).
const email = `interop-${Date.now()}@example.com`;
const su = await api('/auth/signup', { email, password: 'interop passphrase' });
assert.equal(su.status, 201, JSON.stringify(su.body));
const session = su.body;
const created = await api('/api-keys', { label: 'interop', scopes: ['token:exchange', 'tokens:introspect', 'keys:write', 'billing:read', 'billing:write'] },
  { Authorization: `Bearer ${session.access_token}` });
assert.equal(created.status, 201, JSON.stringify(created.body));
const key = created.body.key;

const insecure = { execute: [client.allowInsecureRequests] };
const server = new URL(base);
for (const [name, auth] of [['client_secret_basic', client.ClientSecretBasic(key)], ['client_secret_post', client.ClientSecretPost(key)]]) {
  const config = await client.discovery(server, 'interop-backend', undefined, auth, insecure);
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, base);
  const tok = await client.clientCredentialsGrant(config, { scope: 'billing:read' });
  assert.equal(tok.token_type.toLowerCase(), 'bearer');
  assert.equal(tok.scope, 'billing:read');

  // jose verifies through the discovered JWKS, pinning issuer and audience.
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(tok.access_token, jwks, { issuer: meta.issuer, audience: 'latch', typ: 'at+jwt' });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(payload.client_id, created.body.id);
  assert.ok(payload.auth_time && payload.scope === 'billing:read');

  const intro = await client.tokenIntrospection(config, tok.access_token);
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, created.body.id);
  const dead = await client.tokenIntrospection(config, 'not a token');
  assert.deepEqual({ ...dead }, { active: false });

  // Token exchange (RFC 8693): narrow the token to one scope.
  const narrowed = await client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', {
    subject_token: tok.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'billing:read',
  });
  assert.equal(narrowed.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
  say(`${name}: discovery, client credentials, jose verification, introspection and token exchange work`);
}

// Revocation: the session's refresh token ends the session.
const config = await client.discovery(server, 'interop-backend', undefined, client.ClientSecretBasic(key), insecure);
const before = await client.tokenIntrospection(config, session.refresh_token);
assert.equal(before.active, true);
await client.tokenRevocation(config, session.refresh_token);
await client.tokenRevocation(config, session.refresh_token); // idempotent
const after = await client.tokenIntrospection(config, session.access_token);
assert.equal(after.active, false);
say('revocation ends the session; introspection sees it at once');

// A wrong secret: 401 invalid_client with a Basic challenge; the body survives.
const wrong = await client.discovery(server, 'interop-backend', undefined, client.ClientSecretBasic(key.slice(0, -1) + (key.endsWith('0') ? '1' : '0')), insecure);
try {
  await client.clientCredentialsGrant(wrong, {});
  assert.fail('a wrong secret was accepted');
} catch (err) {
  const res = err.response ?? err.cause?.response;
  assert.ok(err instanceof client.WWWAuthenticateChallengeError || err instanceof client.ResponseBodyError, String(err));
  if (err instanceof client.WWWAuthenticateChallengeError) {
    assert.equal(err.cause[0].scheme, 'basic');
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(body.error, 'invalid_client');
    assert.equal(body.error_description, body.message);
  } else {
    assert.equal(err.error, 'invalid_client');
  }
}
say('a wrong client secret is invalid_client with WWW-Authenticate: Basic');
