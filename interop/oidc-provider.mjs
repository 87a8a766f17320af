// interop/oidc-provider.mjs: a real OpenID provider for Latch's tests of
// provider sign-in (issue 25). It runs the `oidc-provider` package
// (OpenID Certified, pinned in package.json) on a loopback port with its
// built-in development login and consent pages, and one confidential
// client for Latch.
//
// Protocol with the test that starts it (Go's server/providers_test.go,
// tools/test-browser-idp.sh, and tools/idp-browser-test.mjs, which starts
// a second one as an organization's SSO provider):
//   1. it listens on 127.0.0.1, a free port, and prints one JSON line to
//      stdout: {"issuer": "http://127.0.0.1:PORT"};
//   2. it reads one JSON line from stdin:
//      {"client_id": "...", "client_secret": "...", "redirect_uris": ["..."]},
//      with "extra_clients": [client metadata, ...] for more clients (such
//      as one that authenticates with private_key_jwt and its "jwks");
//   3. it prints {"ready": true} and serves until stdin closes.
//
// Accounts: any login is accepted (development interactions). The login
// is the account id and the subject; its email is the login without a
// prefix, verified unless the login starts with "unverified:". A login
// starting with "mfa:" signs in with amr ["pwd","mfa"] and acr "mfa".
import http from 'node:http';
import readline from 'node:readline';
import querystring from 'node:querystring';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const first = await lines.next();
const client = JSON.parse(first.value);

function emailOf(login) {
  return login.replace(/^(mfa:|unverified:)+/, '');
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }, ...(client.extra_clients || []).map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    ...c,
  }))],
  // The email scope's claims stay out of the ID token, as OpenID Connect
  // Core 5.4 allows for the code flow (Latch reads them from userinfo);
  // amr and acr go in it with the openid scope.
  conformIdTokenClaims: true,
  cookies: { keys: ['latch-test-only-cookie-key'] },
  claims: { openid: ['sub', 'acr', 'amr'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: emailOf(id), email_verified: !id.includes('unverified:'), name: emailOf(id).split('@')[0] };
      },
    };
  },
});

// The login step of the development interactions, with amr and acr: the
// package's own submit handler records neither.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name === 'login') {
      const chunks = [];
      for await (const c of ctx.req) chunks.push(c);
      const body = querystring.parse(Buffer.concat(chunks).toString());
      const login = String(body.login || '');
      const mfa = login.startsWith('mfa:');
      await provider.interactionFinished(ctx.req, ctx.res, {
        login: { accountId: login, amr: mfa ? ['pwd', 'mfa'] : ['pwd'], acr: mfa ? 'mfa' : 'pwd' },
      }, { mergeWithLastSubmission: false });
      ctx.respond = false;
      return;
    }
  }
  await next();
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
// Serve until the test closes stdin.
for await (const _ of lines) { /* ignore */ }
server.close();
process.exit(0);
