// fileproc.mjs: one of the processes of the FileStorage test (sdk.test.mjs).
// It opens the session kept in FILE, says {"type":"ready"}, waits for a line
// on stdin, then calls refresh() ROUNDS times (each one under the file's
// lock: a rotation by the other process is adopted, not repeated), and says
// {"type":"done"} with the access tokens it ended each call with.
//
// Usage: node test/fileproc.mjs FILE LATCHD_URL ROUNDS
import { LatchClient } from '../dist/index.js';
import { FileStorage } from '../dist/node.js';

const [file, url, rounds] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const c = new LatchClient({ baseUrl: url, storage: new FileStorage(file) });
const signedOut = [];
let adopted = 0;
c.on('signedOut', (e) => signedOut.push(e.reason));
c.on('tokenRefreshed', (e) => { if (e.adopted) adopted++; });
const { email } = await c.me();
say({ type: 'ready' });
await new Promise((r) => process.stdin.once('data', r));
const tokens = [];
for (let i = 0; i < Number(rounds); i++) {
  tokens.push((await c.refresh()).accessToken);
  await c.me();
}
say({ type: 'done', email, signedOut, adopted, tokens });
