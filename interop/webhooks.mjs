// interop/webhooks.mjs: Latch's webhooks verified by the Standard Webhooks
// reference implementation (the standardwebhooks package), unmodified.
//
// Usage: node interop/webhooks.mjs <latchd base URL> <email>
//
// latchd must run with LATCH_AUTOCONFIRM_EMAIL=true and
// LATCH_WEBHOOK_ALLOW_PRIVATE=true (the receiver listens on loopback). The
// script signs a user up, creates an organization, registers its endpoint
// pointing at a receiver it runs, asks Latch for a
// test message and verifies it with `new Webhook(secret).verify(body,
// headers)`; then it rotates the secret and checks that a message sent
// during the overlap verifies with the old secret alone and with the new
// secret alone.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const [base, email] = process.argv.slice(2);
if (!base || !email) {
  console.error("usage: node webhooks.mjs <latchd URL> <email>");
  process.exit(2);
}

function fail(msg) {
  console.error(`webhooks interop: ${msg}`);
  process.exit(1);
}

async function call(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, text };
}

// The receiver hands each request (raw body and headers) to the waiter.
const waiters = [];
const queued = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const msg = { body: Buffer.concat(chunks).toString("utf8"), headers: req.headers };
    res.writeHead(204).end();
    const w = waiters.shift();
    if (w) w(msg);
    else queued.push(msg);
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const hookURL = `http://127.0.0.1:${server.address().port}/hook`;

function next(timeoutMs = 15000) {
  if (queued.length) return Promise.resolve(queued.shift());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no webhook arrived within 15s")), timeoutMs);
    waiters.push((m) => { clearTimeout(t); resolve(m); });
  });
}

function verifies(secret, msg) {
  try {
    const payload = new Webhook(secret).verify(msg.body, msg.headers);
    return payload;
  } catch (e) {
    return null;
  }
}

try {
  const signup = await fetch(`${base}/auth/signup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "interop-webhooks-Passw0rd!" }),
  });
  if (signup.status !== 201) fail(`signup: ${signup.status} ${await signup.text()}`);
  const token = (await signup.json()).access_token;

  const org = await call("POST", "/organizations", token, { name: "Webhooks interop" });
  if (org.status !== 201) fail(`create organization: ${org.status} ${org.text}`);
  const hooks = `/organizations/${org.json.id}/webhooks`;
  const created = await call("POST", hooks, token, { url: hookURL, description: "interop" });
  if (created.status !== 201) fail(`create webhook: ${created.status} ${created.text}`);
  const { id, secret } = created.json;

  const t1 = await call("POST", `${hooks}/${id}/test`, token);
  if (t1.status !== 202) fail(`test: ${t1.status} ${t1.text}`);
  const m1 = await next();
  const p1 = verifies(secret, m1);
  if (!p1) fail(`standardwebhooks refused the signature: ${JSON.stringify(m1.headers)}`);
  if (p1.type !== "webhook.test") fail(`payload type ${p1.type}`);
  if (verifies(secret, { body: m1.body + " ", headers: m1.headers })) fail("a changed body verified");

  const rot = await call("POST", `${hooks}/${id}/secret/rotate`, token);
  if (rot.status !== 200) fail(`rotate: ${rot.status} ${rot.text}`);
  const t2 = await call("POST", `${hooks}/${id}/test`, token);
  if (t2.status !== 202) fail(`test after rotation: ${t2.status} ${t2.text}`);
  const m2 = await next();
  if (!verifies(secret, m2)) fail("during the overlap, a receiver with only the old secret refused the message");
  if (!verifies(rot.json.secret, m2)) fail("during the overlap, a receiver with only the new secret refused the message");
  console.log("webhooks interop: standardwebhooks verified a message, and both secrets during a rotation");
} catch (e) {
  fail(e.stack || String(e));
} finally {
  server.close();
}
