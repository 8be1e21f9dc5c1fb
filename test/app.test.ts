// The app's logger: secrets never reach a log line, whatever shape the object logged has.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { LOG_REDACT } from '../src/app.js';

describe('log redaction', () => {
  it('censors passwords, tokens, keys and passphrases at the top level and one level down', () => {
    const lines: string[] = [];
    const log = pino({ redact: { paths: LOG_REDACT, censor: '[redacted]' } }, { write: (s: string) => lines.push(s) });
    log.info({ password: 'SECRET-p1', token: 'SECRET-t1', apiToken: 'SECRET-a1', privateKey: 'SECRET-k1', passphrase: 'SECRET-f1', secret: 'SECRET-s1', authorization: 'Bearer SECRET-b1' }, 'top');
    log.info({ smtp: { password: 'SECRET-p2', user: 'u' }, transport: { auth: { user: 'SECRET-u3', pass: 'SECRET-p3' } }, req: { headers: { authorization: 'Bearer SECRET-b2' } }, key: { privateKey: 'SECRET-k2' } }, 'nested');
    const all = lines.join('');
    expect(all).not.toContain('SECRET-');
    expect(all.match(/\[redacted\]/g)).toHaveLength(12);
    expect(all).toContain('"smtp":{"password":"[redacted]","user":"u"}');
  });
});
