// The benchmark's SCIM server in its own process (its own event loop, as a real provider would be): prints its URL
// and token as one JSON line, then serves until stdin closes. Env: SCIM_LATENCY_MS (added per request).
import { startScimServer } from '../test/helpers/scim-server.js';

const server = await startScimServer();
server.latencyMs = Number(process.env.SCIM_LATENCY_MS ?? 0);
// Only counts are kept: the bench sends tens of thousands of requests.
setInterval(() => {
  server.requests.length = 0;
  server.arrivals.length = 0;
}, 1000).unref();
process.stdout.write(JSON.stringify({ url: server.url, token: server.token }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => {
  const cpu = process.cpuUsage();
  process.stderr.write(JSON.stringify({ serverCpuMs: Math.round((cpu.user + cpu.system) / 1000), users: server.users.size }) + '\n');
  void server.close().then(() => process.exit(0));
});
