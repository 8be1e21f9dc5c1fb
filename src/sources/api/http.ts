// The api source's HTTP side: auth (none, bearer, basic, API key, OAuth2 client credentials with a cached
// token), connect/read timeouts, 429 with Retry-After, 5xx and network errors retried with capped exponential
// backoff and jitter, and a requests-per-minute budget. Every secret it resolves is registered with the
// redactor, so nothing it reports, logs or archives carries one.
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { ApiSourceConfig } from '../../config/source-schema.js';
import { FetchError } from '../source.js';
import type { Redactor } from '../redact.js';

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  url: string;
  /** Time spent waiting on the network for this response (ms), retries and waits included. */
  waitMs: number;
}

class RetryableError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retry-After as seconds or an HTTP date → milliseconds from now (undefined when unreadable). */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class ApiClient {
  private token: { value: string; expiresAt: number | null } | null = null;
  private tokenRequest: Promise<string> | null = null;
  private lastRequestAt = 0;
  private readonly agents = { http: new http.Agent({ keepAlive: true, maxSockets: 4 }), https: new https.Agent({ keepAlive: true, maxSockets: 4 }) };
  /** Requests sent, for the fetch summary. */
  requests = 0;

  constructor(
    private readonly cfg: ApiSourceConfig,
    private readonly resolve: (s: string) => string,
    private readonly redactor: Redactor,
    private readonly logger: Logger,
  ) {}

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** The request with auth applied, retried as configured; a non-2xx answer that is not retried fails the fetch. */
  async send(req: HttpRequest, where: string): Promise<HttpResponse> {
    const { maxAttempts } = this.cfg.retry;
    let refreshedAfter401 = false;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const authed = await this.withAuth(req);
        const res = await this.once(authed);
        if (res.status === 401 && this.cfg.auth.type === 'oauth2' && !refreshedAfter401) {
          // The token may have been revoked or expired early: one fresh token, then the answer counts.
          refreshedAfter401 = true;
          this.token = null;
          attempt--;
          continue;
        }
        if (res.status === 429) throw new RetryableError(`HTTP 429 Too Many Requests`, retryAfterMs(header(res.headers, 'retry-after'), Date.now()) ?? undefined);
        // A 503 may say when to come back too.
        if (res.status >= 500) throw new RetryableError(`HTTP ${res.status}`, retryAfterMs(header(res.headers, 'retry-after'), Date.now()));
        if (res.status < 200 || res.status >= 300) {
          throw new FetchError(`HTTP ${res.status} from ${this.redactor.redact(where)}: ${this.redactor.redact(res.body.slice(0, 300))}`, this.redactor.redact(where),
            res.status === 401 || res.status === 403 ? 'the credentials were refused: check the secret in the environment and the API user\'s access' : 'check the request configuration (URL, query, body)');
        }
        return { ...res, waitMs: Date.now() - started };
      } catch (err) {
        if (err instanceof FetchError) throw err;
        const retryAfter = err instanceof RetryableError ? err.retryAfterMs : undefined;
        const message = this.redactor.redact((err as Error).message);
        if (retryAfter !== undefined && retryAfter > this.cfg.retry.maxRetryAfterSeconds * 1000) {
          throw new FetchError(`${message}: the API asks to wait ${Math.ceil(retryAfter / 1000)} s, more than maxRetryAfterSeconds (${this.cfg.retry.maxRetryAfterSeconds})`, this.redactor.redact(where),
            'the request budget of the API is used up; lower requestsPerMinute or fetch at a quieter hour');
        }
        if (attempt >= maxAttempts) {
          throw new FetchError(`${message} (after ${attempt} attempt${attempt > 1 ? 's' : ''})`, this.redactor.redact(where), 'the API failed repeatedly; nothing was applied and the next scheduled fetch tries again');
        }
        const backoff = Math.min(this.cfg.retry.maxDelayMs, this.cfg.retry.baseDelayMs * 2 ** (attempt - 1));
        const wait = retryAfter ?? Math.round(backoff * (0.5 + Math.random() * 0.5));
        this.logger.warn({ where: this.redactor.redact(where), attempt, waitMs: wait, error: message }, 'api request failed; retrying');
        await sleep(wait);
      }
    }
  }

  private async withAuth(req: HttpRequest): Promise<HttpRequest> {
    const auth = this.cfg.auth;
    const headers = { ...req.headers };
    let url = req.url;
    switch (auth.type) {
      case 'none':
        break;
      case 'bearer':
        headers.authorization = `Bearer ${this.resolve(auth.token)}`;
        break;
      case 'basic': {
        const value = Buffer.from(`${this.resolve(auth.username)}:${this.resolve(auth.password)}`).toString('base64');
        this.redactor.add(value);
        headers.authorization = `Basic ${value}`;
        break;
      }
      case 'apiKey': {
        const value = this.resolve(auth.value);
        if (auth.in === 'header') headers[auth.name.toLowerCase()] = auth.prefix + value;
        else {
          const u = new URL(url);
          u.searchParams.set(auth.name, value);
          url = u.toString();
          this.redactor.add(encodeURIComponent(value));
        }
        break;
      }
      case 'oauth2':
        headers.authorization = `Bearer ${await this.accessToken()}`;
        break;
    }
    return { ...req, url, headers };
  }

  /** OAuth2 client credentials: cached until shortly before `expires_in`; without `expires_in` it is kept until refused. */
  private accessToken(): Promise<string> {
    const auth = this.cfg.auth;
    if (auth.type !== 'oauth2') throw new Error('not oauth2');
    if (this.token && (this.token.expiresAt === null || Date.now() < this.token.expiresAt - auth.refreshBeforeSeconds * 1000)) return Promise.resolve(this.token.value);
    // Object types fetched side by side share one token request.
    this.tokenRequest ??= this.requestToken().finally(() => { this.tokenRequest = null; });
    return this.tokenRequest;
  }

  private async requestToken(): Promise<string> {
    const auth = this.cfg.auth;
    if (auth.type !== 'oauth2') throw new Error('not oauth2');
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: this.resolve(auth.clientId), client_secret: this.resolve(auth.clientSecret) });
    if (auth.scope) form.set('scope', this.resolve(auth.scope));
    this.redactor.add(encodeURIComponent(this.resolve(auth.clientSecret)));
    const where = `token endpoint ${auth.tokenUrl}`;
    for (let attempt = 1; ; attempt++) {
      let res: Omit<HttpResponse, 'waitMs'>;
      try {
        res = await this.once({ method: 'POST', url: this.resolve(auth.tokenUrl), headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: form.toString() });
      } catch (err) {
        if (attempt >= this.cfg.retry.maxAttempts) throw new FetchError(`${where}: ${this.redactor.redact((err as Error).message)} (after ${attempt} attempts)`, where);
        await sleep(Math.min(this.cfg.retry.maxDelayMs, this.cfg.retry.baseDelayMs * 2 ** (attempt - 1)));
        continue;
      }
      if ((res.status >= 500 || res.status === 429) && attempt < this.cfg.retry.maxAttempts) {
        await sleep(retryAfterMs(header(res.headers, 'retry-after'), Date.now()) ?? Math.min(this.cfg.retry.maxDelayMs, this.cfg.retry.baseDelayMs * 2 ** (attempt - 1)));
        continue;
      }
      if (res.status !== 200) {
        throw new FetchError(`${where} answered HTTP ${res.status}: ${this.redactor.redact(res.body.slice(0, 300))}`, where, 'check clientId, the client secret in the environment, and scope');
      }
      let body: { access_token?: unknown; expires_in?: unknown };
      try {
        body = JSON.parse(res.body);
      } catch {
        throw new FetchError(`${where} did not answer JSON`, where);
      }
      if (typeof body.access_token !== 'string' || body.access_token === '') throw new FetchError(`${where}: no access_token in the answer`, where);
      this.redactor.add(body.access_token);
      const expiresIn = Number(body.expires_in);
      this.token = { value: body.access_token, expiresAt: body.expires_in === undefined || !Number.isFinite(expiresIn) ? null : Date.now() + expiresIn * 1000 };
      return this.token.value;
    }
  }

  private async once(req: HttpRequest): Promise<Omit<HttpResponse, 'waitMs'>> {
    // The budget: request starts spaced by 60 s / requestsPerMinute.
    const gap = 60_000 / this.cfg.requestsPerMinute;
    const wait = this.lastRequestAt + gap - Date.now();
    if (wait > 0) await sleep(wait);
    this.lastRequestAt = Date.now();
    this.requests++;
    const url = new URL(req.url);
    const lib = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? this.agents.https : this.agents.http;
    const { connectSeconds, readSeconds } = this.cfg.timeouts;
    const max = this.cfg.maxResponseBytes;
    return new Promise((resolve, reject) => {
      const r = lib.request(url, { method: req.method, headers: { accept: 'application/json', ...req.headers, ...(req.body !== undefined ? { 'content-length': String(Buffer.byteLength(req.body)) } : {}) }, agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) r.destroy(new FetchError(`the response is larger than maxResponseBytes (${max})`));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), url: req.url }));
        res.on('error', reject);
      });
      const connectTimer = setTimeout(() => r.destroy(new Error(`no connection within ${connectSeconds} s`)), connectSeconds * 1000);
      r.on('socket', (s) => {
        if (!s.connecting) clearTimeout(connectTimer);
        else s.once('connect', () => clearTimeout(connectTimer));
      });
      r.setTimeout(readSeconds * 1000, () => r.destroy(new Error(`no data within ${readSeconds} s`)));
      r.on('error', (err) => {
        clearTimeout(connectTimer);
        reject(err);
      });
      r.on('close', () => clearTimeout(connectTimer));
      r.end(req.body);
    });
  }
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}
