// LatchAdmin against the live latchd of tools/test-sdk.sh, whose
// LATCH_OPERATOR_EMAILS lists ts-ops@example.com. An operator's key counts
// only when the email was verified before the key was created, and an
// autoconfirmed signup records no verification: the operator resets its
// password through the link in latchd's log (LATCH_MAIL_LOG_LINKS), which
// records it, and only then creates its key.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { LatchAdmin, LatchClient, LatchError } from '../dist/index.js';
import { PASSWORD, email, resetToken, sleep, startProxy } from './helpers.mjs';

const OPS = 'ts-ops@example.com';
const ADMIN_SCOPES = ['admin:users:read', 'admin:users:write', 'admin:webhooks:read', 'admin:webhooks:write', 'admin:events:read'];
// An argon2id hash of "imported password 1" (m=19456, t=2, p=1, salt
// "latch-sdk-admin!"): Node has no bcrypt of its own.
const IMPORTED_HASH = '$argon2id$v=19$m=19456,t=2,p=1$bGF0Y2gtc2RrLWFkbWluIQ$kV4tHe3XrQhfWDMPdEnAdkVS8tbfLAuJaH38z6s71YM';

let proxy;
/** @type {LatchAdmin} */
let admin;
before(async () => {
  proxy = await startProxy();
  const c = new LatchClient({ baseUrl: proxy.url });
  await c.signUp(OPS, PASSWORD);
  await c.unwrap(await c.api.POST('/auth/password/forgot', { body: { email: OPS } }));
  const token = await resetToken(OPS);
  await c.unwrap(await c.api.POST('/auth/password/reset', { body: { token, password: PASSWORD } }));
  await c.signIn(OPS, PASSWORD);
  const key = await c.createAPIKey({ label: 'ops', scopes: ADMIN_SCOPES });
  admin = new LatchAdmin({ baseUrl: proxy.url, apiKey: key.key });
});
after(async () => { await proxy.close(); });

async function rejectsWithCode(promise, code) {
  await assert.rejects(promise, (e) => e instanceof LatchError && e.code === code);
}

test('admin: list, iterate, ban, unban, metadata, export, impersonate, import, delete', async () => {
  const prefix = `ts-adm-${Date.now()}-`;
  const addrs = [];
  for (let i = 0; i < 3; i++) {
    const addr = `${prefix}${i}@example.com`;
    await new LatchClient({ baseUrl: proxy.url }).signUp(addr, PASSWORD);
    addrs.push(addr);
  }
  const page = await admin.listUsers({ email_prefix: prefix, limit: 2 });
  assert.equal(page.users.length, 2);
  assert.ok(page.next_cursor);
  const seen = [];
  for await (const u of admin.iterUsers({ email_prefix: prefix, limit: 1 })) seen.push(u.email);
  assert.deepEqual(seen, [...addrs].reverse());

  const id = (await admin.listUsers({ email: addrs[0] })).users[0].id;
  const banned = await admin.banUser(id, new Date(Date.now() + 86_400_000), 'fraud');
  assert.equal(banned.banned, true);
  assert.equal(banned.ban_reason, 'fraud');
  await rejectsWithCode(new LatchClient({ baseUrl: proxy.url }).signIn(addrs[0], PASSWORD), 'user_banned');
  assert.equal((await admin.unbanUser(id)).banned, false);
  await new LatchClient({ baseUrl: proxy.url }).signIn(addrs[0], PASSWORD);

  await admin.updateUser(id, { app_metadata: { plan: 'pro' }, user_metadata: { theme: 'dark' } });
  const d = await admin.getUser(id);
  assert.equal(d.user.app_metadata?.plan, 'pro');
  assert.equal(d.user.user_metadata?.theme, 'dark');
  assert.equal((await admin.exportUser(id)).user.id, id);
  await admin.endSessions(id);
  assert.equal((await admin.getUser(id)).sessions.length, 0);
  await admin.removeFactors(id);
  assert.ok((await admin.impersonate(id)).access_token);

  const imported = email('imported');
  const res = await admin.importUsers([{ email: imported, email_verified: true, password_hash: IMPORTED_HASH }]);
  assert.equal(res.created, 1, JSON.stringify(res));
  await new LatchClient({ baseUrl: proxy.url }).signIn(imported, 'imported password 1');
  let exported = 0;
  let found = false;
  for await (const u of admin.exportUsers({ limit: 2 })) {
    exported++;
    if (u.email === imported) found = true;
  }
  assert.ok(found && exported >= 5, `exported ${exported}`);

  await admin.deleteUser(/** @type {string} */ (res.results[0].id), { deleteSoleOwnedOrgs: true });
  await rejectsWithCode(admin.getUser(/** @type {string} */ (res.results[0].id)), 'not_found');
});

test('admin: webhooks, a test send and its delivery, the events feed', async () => {
  const got = [];
  const rcv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { got.push(req.headers['webhook-id']); res.writeHead(204).end(); });
  });
  await new Promise((r) => rcv.listen(0, '127.0.0.1', () => r(undefined)));
  try {
    const url = `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (rcv.address()).port}/hook`;
    const wh = await admin.createWebhook({ url, event_types: ['user.created'] });
    assert.match(wh.secret, /^whsec_/);
    assert.ok((await admin.listWebhooks()).webhooks.some((w) => w.id === wh.id));
    assert.equal((await admin.updateWebhook(wh.id, { description: 'billing' })).description, 'billing');
    assert.equal((await admin.getWebhook(wh.id)).description, 'billing');
    await admin.testWebhook(wh.id);
    let deliveries = [];
    for (let i = 0; i < 100 && deliveries.length === 0; i++) {
      deliveries = (await admin.listDeliveries(wh.id)).deliveries;
      if (deliveries.length === 0) await sleep(200);
    }
    assert.ok(deliveries.length > 0, 'no delivery of the test message');
    assert.ok(got.length > 0);
    await admin.redeliver(wh.id, deliveries[0].message_id);
    assert.notEqual((await admin.rotateWebhookSecret(wh.id)).secret, wh.secret);
    await admin.deleteWebhook(wh.id);
    await rejectsWithCode(admin.getWebhook(wh.id), 'not_found');
  } finally {
    await new Promise((r) => rcv.close(() => r(undefined)));
  }

  // The feed, two events a page: every user.created of three new users, in order.
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const r = await new LatchClient({ baseUrl: proxy.url }).signUp(email('event'), PASSWORD);
    ids.push(/** @type {any} */ (r).user.id);
  }
  const seqs = new Map();
  for await (const e of admin.iterEvents({ types: ['user.created'], limit: 2 })) {
    assert.equal(e.type, 'user.created');
    seqs.set(/** @type {any} */ (e).data.user_id, e.seq);
  }
  const mine = ids.map((id) => seqs.get(id));
  assert.ok(mine.every((s) => s !== undefined), `missing events: ${JSON.stringify(mine)}`);
  assert.ok(mine[0] < mine[1] && mine[1] < mine[2]);
  const after = await admin.listEvents({ after: mine[1], types: ['user.created'] });
  assert.ok(after.events.some((e) => e.seq === mine[2]));
  assert.ok(after.events.every((e) => e.seq > mine[1]));
});

test('admin: a key of a user who is not an operator is refused with insufficient_permissions', async () => {
  const c = new LatchClient({ baseUrl: proxy.url });
  await c.signUp(email('notops'), PASSWORD);
  const key = await c.createAPIKey({ label: 'not ops', scopes: ADMIN_SCOPES });
  const a = new LatchAdmin({ baseUrl: proxy.url, apiKey: key.key });
  await rejectsWithCode(a.listUsers(), 'insufficient_permissions');
  await rejectsWithCode(a.iterEvents().next(), 'insufficient_permissions');
});
