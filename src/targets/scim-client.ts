// A conservative SCIM 2.0 client (RFC 7644) for one service provider: bearer token, bounded concurrency and rate,
// timeouts, retries of 5xx and network errors with capped exponential backoff and jitter, and 429 `Retry-After`
// pausing every request to the provider. Nothing here knows about plans or the journal (src/targets/scim.ts does).
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';

export interface ScimClientOptions {
  baseUrl: string;
  token: string;
  concurrency: number;
  /** Requests per second, at most (none: only concurrency bounds it). */
  rateLimit?: number;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** Tries per request, the first one included. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** The longest Retry-After honoured; a longer one is capped to it. */
  maxRetryAfterMs: number;
  pageSize: number;
  logger: Logger;
}

/** An answer of the provider that is not a success: its SCIM error body, as a person can act on it. */
export class ScimError extends Error {
  constructor(readonly method: string, readonly path: string, readonly status: number, readonly scimType: string | undefined, readonly detail: string | undefined) {
    super(`SCIM ${method} ${decodePath(path)} answered ${status}${scimType ? ` ${scimType}` : ''}${detail ? `: ${detail}` : ''}${hintFor(status)}`);
  }
}

/** The provider refused the token (401) or the operation (403): nothing else should be sent. */
export class ScimAuthError extends ScimError {}

/** The provider could not be reached or kept failing after every retry. */
export class ScimUnavailableError extends Error {}

function hintFor(status: number): string {
  if (status === 401) return ' (the token was refused: get a new one from WT and set it in the tenant\'s token environment variable)';
  if (status === 403) return ' (the token may not do this: check the SCIM app\'s permissions in WT)';
  return '';
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

/** `attr eq "value"` with the value as a JSON string (RFC 7644 §3.4.2.2: quotes and backslashes escaped). */
export function eqFilter(attr: string, value: string): string {
  return `${attr} eq ${JSON.stringify(value)}`;
}

export interface ServiceProviderConfig {
  patch: boolean;
  bulk: { supported: boolean; maxOperations: number };
  filter: { supported: boolean; maxResults: number };
}

export const DEFAULT_PROVIDER_CONFIG: ServiceProviderConfig = {
  patch: true, bulk: { supported: false, maxOperations: 0 }, filter: { supported: true, maxResults: 100 },
};

interface Answer { status: number; body: any; headers: http.IncomingHttpHeaders }

const RETRIED = new Set([500, 502, 503, 504]);
export const SCIM_JSON = 'application/scim+json';

export class ScimClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private pausedUntil = 0;
  private nextSlot = 0;
  private config: Promise<ServiceProviderConfig> | null = null;
  /** Requests sent (tries included), for the log and benchmarks. */
  requests = 0;
  /** Methods the provider refused (501/405): requests still queued for one are answered so here, never sent. */
  private readonly refused = new Set<string>();

  constructor(private readonly o: ScimClientOptions) {
    this.base = new URL(o.baseUrl.replace(/\/+$/, '') + '/');
    const Agent = this.base.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  }

  close(): void {
    this.agent.destroy();
  }

  /** From now on `method` is not sent: each request for it is answered 501 here (the caller falls back). */
  refuse(method: string): void {
    this.refused.add(method);
  }

  /** /ServiceProviderConfig, read once; what it leaves out (or a provider without it) falls back to safe defaults. */
  providerConfig(): Promise<ServiceProviderConfig> {
    this.config ??= this.request('GET', 'ServiceProviderConfig').then(
      (b) => ({
        patch: b?.patch?.supported !== false,
        bulk: { supported: b?.bulk?.supported === true, maxOperations: positive(b?.bulk?.maxOperations) ?? 0 },
        filter: { supported: b?.filter?.supported !== false, maxResults: positive(b?.filter?.maxResults) ?? DEFAULT_PROVIDER_CONFIG.filter.maxResults },
      }),
      (err) => {
        if (err instanceof ScimAuthError) {
          this.config = null;
          throw err;
        }
        if (err instanceof ScimError) return DEFAULT_PROVIDER_CONFIG;
        this.config = null;
        throw err;
      },
    );
    return this.config;
  }

  /** The schema URNs the provider lists at /Schemas, or null when it has no such endpoint. */
  async schemaIds(): Promise<string[] | null> {
    try {
      const body = await this.request('GET', 'Schemas');
      const list: any[] = Array.isArray(body?.Resources) ? body.Resources : Array.isArray(body) ? body : [];
      return list.map((r) => r?.id).filter((id): id is string => typeof id === 'string');
    } catch (err) {
      if (err instanceof ScimError && !(err instanceof ScimAuthError)) return null;
      throw err;
    }
  }

  get(path: string): Promise<any> {
    return this.request('GET', path);
  }

  post(path: string, body: unknown): Promise<any> {
    return this.request('POST', path, body);
  }

  patch(path: string, body: unknown): Promise<any> {
    return this.request('PATCH', path, body);
  }

  put(path: string, body: unknown): Promise<any> {
    return this.request('PUT', path, body);
  }

  delete(path: string): Promise<any> {
    return this.request('DELETE', path);
  }

  /** The resources matching `filter` (all when absent), page by page, tolerating a provider that caps `count`. */
  async *list(resource: 'Users' | 'Groups', filter?: string, attributes?: string): AsyncGenerator<any> {
    const config = await this.providerConfig();
    const count = Math.max(1, Math.min(this.o.pageSize, config.filter.maxResults));
    // Bounded: a provider whose totals never add up still ends after as many pages as it claims to have.
    for (let startIndex = 1, pages = 0; pages < 1_000_000; pages++) {
      const q = new URLSearchParams({ startIndex: String(startIndex), count: String(count) });
      if (filter) q.set('filter', filter);
      if (attributes) q.set('attributes', attributes);
      const page = await this.request('GET', `${resource}?${q.toString().replace(/\+/g, '%20')}`);
      const items: any[] = Array.isArray(page?.Resources) ? page.Resources : [];
      for (const item of items) yield item;
      startIndex += items.length;
      const total = Number(page?.totalResults);
      if (items.length === 0 || (Number.isFinite(total) && startIndex > total)) return;
    }
  }

  /** The first resource matching `filter`, or null. */
  async find(resource: 'Users' | 'Groups', filter: string): Promise<any | null> {
    for await (const item of this.list(resource, filter)) return item;
    return null;
  }

  /** One request with its retries; resolves with the parsed body (null when empty). */
  async request(method: string, path: string, body?: unknown): Promise<any> {
    for (let attempt = 1; ; attempt++) {
      let answer: Answer;
      try {
        answer = await this.send(method, path, body);
      } catch (err) {
        if (attempt >= this.o.maxAttempts) throw new ScimUnavailableError(`SCIM ${method} ${decodePath(path)}: ${(err as Error).message} (after ${attempt} tries; is ${this.base.origin} reachable?)`);
        await sleep(this.backoff(attempt));
        continue;
      }
      const { status } = answer;
      if (status < 300) return answer.body;
      if (status === 429 && attempt < this.o.maxAttempts) {
        this.pause(retryAfterMs(answer.headers['retry-after'], this.backoff(attempt), this.o.maxRetryAfterMs));
        continue;
      }
      if (RETRIED.has(status) && attempt < this.o.maxAttempts) {
        await sleep(this.backoff(attempt));
        continue;
      }
      const scimType = typeof answer.body?.scimType === 'string' ? answer.body.scimType : undefined;
      const detail = typeof answer.body?.detail === 'string' ? answer.body.detail : typeof answer.body === 'string' && answer.body ? answer.body.slice(0, 200) : undefined;
      const Err = status === 401 || status === 403 ? ScimAuthError : ScimError;
      throw new Err(method, path, status, scimType, detail);
    }
  }

  /** Full jitter over a capped exponential: spreads retries of many requests failing at once. */
  private backoff(attempt: number): number {
    return Math.random() * Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (attempt - 1));
  }

  /** A 429 stops every request to this provider until the pause is over, not only the one that got it. */
  private pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    this.o.logger.warn({ target: this.base.origin, pauseMs: ms }, 'SCIM provider asked to slow down (429): pausing all requests');
  }

  private async acquire(): Promise<void> {
    while (this.active >= this.o.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  private async gate(): Promise<void> {
    for (let wait = this.pausedUntil - Date.now(); wait > 0; wait = this.pausedUntil - Date.now()) await sleep(wait);
    if (this.o.rateLimit) {
      const now = Date.now();
      const slot = Math.max(now, this.nextSlot);
      this.nextSlot = slot + 1000 / this.o.rateLimit;
      if (slot > now) await sleep(slot - now);
    }
  }

  private async send(method: string, path: string, body?: unknown): Promise<Answer> {
    await this.acquire();
    try {
      await this.gate();
      if (this.refused.has(method)) return { status: 501, body: { detail: `${method} is not supported by this provider (not sent)` }, headers: {} };
      this.requests++;
      const started = Date.now();
      const answer = await this.exchange(method, path, body);
      // Debug only, and never a header: the token stays out of every log.
      this.o.logger.debug({ method, path: decodePath(path), status: answer.status, ms: Date.now() - started }, 'SCIM request');
      return answer;
    } finally {
      this.release();
    }
  }

  private exchange(method: string, path: string, body?: unknown): Promise<Answer> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let connectTimer: NodeJS.Timeout | undefined;
      const req = lib.request(url, {
        method, agent: this.agent,
        headers: {
          authorization: `Bearer ${this.o.token}`, accept: `${SCIM_JSON}, application/json`,
          ...(payload ? { 'content-type': SCIM_JSON, 'content-length': payload.length } : {}),
        },
        timeout: this.o.responseTimeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = null;
          if (text) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      });
      req.on('socket', (socket) => {
        if (socket.connecting) {
          connectTimer = setTimeout(() => req.destroy(new Error(`no connection within ${this.o.connectTimeoutMs} ms`)), this.o.connectTimeoutMs);
          socket.once('connect', () => clearTimeout(connectTimer));
        }
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.o.responseTimeoutMs} ms`)));
      req.on('error', (err) => {
        clearTimeout(connectTimer);
        reject(err);
      });
      req.on('close', () => clearTimeout(connectTimer));
      req.end(payload);
    });
  }
}

function positive(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** `Retry-After` as seconds or an HTTP date; absent or unreadable: the backoff. Capped either way. */
export function retryAfterMs(header: string | string[] | undefined, fallbackMs: number, maxMs: number, now = Date.now()): number {
  const value = Array.isArray(header) ? header[0] : header;
  let ms = fallbackMs;
  if (value !== undefined && /^\s*\d+\s*$/.test(value)) ms = Number(value) * 1000;
  else if (value !== undefined && !Number.isNaN(Date.parse(value))) ms = Math.max(0, Date.parse(value) - now);
  return Math.min(ms, maxMs);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
