// The source scheduler: a tenant's source fires at its cron time, an overlapping fetch is skipped and logged,
// node-cron's messages go to pino, and what it fetched flows through the inbox into the directory.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadTenants } from '../../src/config/load.js';
import type { Delivery } from '../../src/intake/handover.js';
import { Inbox } from '../../src/intake/inbox.js';
import { cronLogger, nextScheduledRun, SourceScheduler } from '../../src/sources/scheduler.js';
import { startApiServer, type ApiServer } from './api-server.js';
import { listDirectoryUsers } from './directory.js';
import { sourceWorkspace, type SourceWorkspace } from './helpers.js';

let server: ApiServer;
let ws: SourceWorkspace;
beforeEach(async () => {
  server = await startApiServer();
  ws = sourceWorkspace();
});
afterEach(async () => {
  await server.close();
  ws.cleanup();
});

const PEOPLE = [1, 2, 3].map((i) => ({ id: `p${i}`, first: `F${i}`, last: `L${i}`, mail: `p${i}@acme.example` }));

function tenant(schedule: string, timezone?: string) {
  return {
    name: 'Acme',
    source: {
      type: 'api', schedule, ...(timezone ? { timezone } : {}), requestsPerMinute: 60_000,
      objects: { users: { request: { url: `${server.base}/people` }, records: 'data', fields: { externalId: 'id', firstName: 'first', lastName: 'last', username: 'mail' } } },
    },
  };
}

describe('source scheduler', () => {
  it('fires at the cron time, skips an overlapping fetch, and the fetched file is reconciled', async () => {
    // Each fetch takes 2.2 s, the schedule fires every second: the ticks in between must be skipped.
    server.handler = () => ({ body: { data: PEOPLE }, delayMs: 2200 });
    ws.writeTenant('acme', tenant('* * * * * *'));
    const app = ws.app();
    const inbox = new Inbox(app, () => loadTenants(app.config.paths.tenantsDir), { archiveDays: 30, settleSecondsOverride: 0, stabilityMs: 100 });
    await inbox.start();
    const delivered: Delivery[] = [];
    const scheduler = new SourceScheduler(app, () => loadTenants(app.config.paths.tenantsDir), (d) => {
      delivered.push(d);
      inbox.fileArrived(d.inboxPath, d);
    });
    try {
      scheduler.start();
      expect(scheduler.nextRun('acme')).toBeInstanceOf(Date);
      const deadline = Date.now() + 8000;
      while (delivered.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(delivered).toHaveLength(1);
      // Ticks fired while the first fetch ran were skipped, not queued.
      await new Promise((r) => setTimeout(r, 1200));
      const logs = ws.logs.join('');
      expect(logs).toContain('previous fetch still running; this fetch is skipped');
      expect(server.requests.length).toBeLessThanOrEqual(2);
    } finally {
      await scheduler.stop(5000);
    }
    // Give the inbox its settle window, then the users are in the directory.
    const deadline = Date.now() + 5000;
    while (listDirectoryUsers(app, 'acme').length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      await inbox.idle();
    }
    await inbox.stop(1000);
    expect(listDirectoryUsers(app, 'acme').map((u) => u.externalId).sort()).toEqual(['p1', 'p2', 'p3']);
  }, 20_000);

  it('schedules in the tenant time zone, Europe/Stockholm by default', async () => {
    ws.writeTenant('acme', tenant('0 1 * * *'));
    ws.writeTenant('tokyo', tenant('0 1 * * *', 'Asia/Tokyo'));
    const app = ws.app();
    const [acme, tokyo] = [app.tenant('acme'), app.tenant('tokyo')];
    expect(acme.source.type === 'api' && acme.source.timezone).toBe('Europe/Stockholm');
    const next = (await nextScheduledRun(acme))!;
    // 01:00 in Stockholm is 00:00 UTC in winter and 23:00 UTC in summer.
    expect([0, 23]).toContain(next.getUTCHours());
    expect(next.getUTCMinutes()).toBe(0);
    expect((await nextScheduledRun(tokyo))!.getUTCHours()).toBe(16);
  });

  it("node-cron's own messages go to pino", () => {
    const app = ws.app();
    const log = cronLogger(app.logger);
    log.warn('missed execution at 01:00');
    log.error(new Error('task failed'));
    const lines = ws.logs.map((l) => JSON.parse(l) as { component?: string; msg: string; level: number });
    expect(lines).toEqual(expect.arrayContaining([
      expect.objectContaining({ component: 'node-cron', msg: 'missed execution at 01:00', level: 40 }),
      expect.objectContaining({ component: 'node-cron', msg: 'task failed', level: 50 }),
    ]));
  });
});
