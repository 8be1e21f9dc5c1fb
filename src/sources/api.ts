// The `api` source: a generic HTTP JSON poller, configured per object type (users, groups, segments). Each
// type's pages are fetched, archived (secrets removed) and rendered as the tenant's columns into one CSV file
// per type; the fetch is all or nothing: any failure, loop, page cap, total mismatch or JSON error fails it
// whole and no file of it is handed over.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ApiObjectConfig, ApiSourceConfig } from '../config/source-schema.js';
import { apiFileName } from '../config/source-schema.js';
import type { TenantConfig } from '../config/schema.js';
import { FILE_TYPES, type FileType } from '../model.js';
import { ApiClient, header, type HttpResponse } from './api/http.js';
import { compilePath } from './api/json-path.js';
import { RecordRenderer } from './api/render.js';
import { AUTH_HEADERS, Redactor } from './redact.js';
import { makeResolver } from './resolve.js';
import { FetchError, type FetchContext, type FetchedFile, type FetchResult, type Source } from './source.js';

export interface ArchivedPage {
  type: FileType;
  page: number;
  request: { method: string; url: string };
  status: number;
  headers: Record<string, string>;
  waitMs: number;
  body: string;
}

function resolveDeep(v: unknown, resolve: (s: string) => string): unknown {
  if (typeof v === 'string') return resolve(v);
  if (Array.isArray(v)) return v.map((x) => resolveDeep(x, resolve));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveDeep(x, resolve)]));
  return v;
}

/** The `rel="next"` target of a Link header. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(m[2])) return m[1];
  }
  return undefined;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export interface ApiFetchStats {
  pages: number;
  records: number;
  requests: number;
  /** Time the fetch was blocked waiting on responses (ms); the next page is fetched while one is rendered. */
  networkMs: number;
}

export class ApiSource implements Source {
  /** Figures of the last fetch (benchmark). */
  stats: ApiFetchStats = { pages: 0, records: 0, requests: 0, networkMs: 0 };

  constructor(private readonly cfg: ApiSourceConfig) {}

  async fetch(ctx: FetchContext): Promise<FetchResult> {
    const redactor = new Redactor();
    const resolve = makeResolver(ctx.tenant, ctx.env, redactor);
    const client = new ApiClient(this.cfg, resolve, redactor, ctx.logger);
    const types = FILE_TYPES.filter((t) => this.cfg.objects[t]);
    const at = stamp(ctx.now());
    const renderers: RecordRenderer[] = [];
    this.stats = { pages: 0, records: 0, requests: 0, networkMs: 0 };
    try {
      const files: FetchedFile[] = [];
      const queue = [...types];
      const worker = async () => {
        for (let t = queue.shift(); t !== undefined; t = queue.shift()) files.push(await this.fetchType(ctx, t, at, client, resolve, redactor, renderers));
      };
      const results = await Promise.allSettled(Array.from({ length: Math.min(this.cfg.concurrency, types.length) }, worker));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      files.sort((a, b) => FILE_TYPES.indexOf(a.type!) - FILE_TYPES.indexOf(b.type!));
      this.stats.requests = client.requests;
      return { files, summary: { files: files.length, records: this.stats.records, pages: this.stats.pages } };
    } catch (err) {
      for (const r of renderers) r.discard();
      if (err instanceof FetchError) throw new FetchError(redactor.redact(err.message), err.where && redactor.redact(err.where), err.hint);
      throw new FetchError(redactor.redact((err as Error).message));
    } finally {
      client.close();
    }
  }

  private async fetchType(
    ctx: FetchContext, type: FileType, at: string, client: ApiClient, resolve: (s: string) => string, redactor: Redactor, renderers: RecordRenderer[],
  ): Promise<FetchedFile> {
    const obj = this.cfg.objects[type]!;
    const spec = ctx.tenant.files[type]!;
    const renderer = new RecordRenderer(type, obj, spec, path.join(ctx.workDir, `.fetch-${at}-${type}-${process.pid}.csv`));
    renderers.push(renderer);
    const pager = new Pager(obj, this.cfg.maxPages, type);
    const baseUrl = resolve(obj.request.url);
    const headers = Object.fromEntries(Object.entries(obj.request.headers).map(([k, v]) => [k.toLowerCase(), resolve(v)]));
    const body = obj.request.body === undefined ? undefined : JSON.stringify(resolveDeep(obj.request.body, resolve));
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const query = Object.fromEntries(Object.entries(obj.request.query).map(([k, v]) => [k, resolve(v)]));
    const url: string | undefined = pager.firstUrl(baseUrl, query);
    // The next page is requested as soon as its URL is known, and fetched while this page is rendered.
    const request = (u: string, page: number) => {
      const where = `${type} page ${page} (${obj.request.method} ${u})`;
      const p = client.send({ method: obj.request.method, url: u, headers, body }, where).then((res) => ({ res, where, url: u, page }));
      p.catch(() => undefined); // awaited below; a fetch that fails before then must not leave an unhandled rejection
      return p;
    };
    let pending = url === undefined ? undefined : request(url, 1);
    while (pending !== undefined) {
      const waitStart = performance.now();
      const { res, where, url: pageUrl, page } = await pending;
      this.stats.networkMs += performance.now() - waitStart;
      this.stats.pages++;
      if (ctx.archiveDir) archivePage(ctx.archiveDir, { type, page, request: { method: obj.request.method, url: redactor.redact(pageUrl) }, status: res.status, headers: safeHeaders(res, redactor), waitMs: res.waitMs, body: redactor.redact(res.body) });
      let json: unknown;
      try {
        json = JSON.parse(res.body);
      } catch (err) {
        throw new FetchError(`${type}: page ${page} is not valid JSON (${(err as Error).message})`, redactor.redact(where), 'the API answered something else than JSON (an error page?); see the archived response');
      }
      const records = renderer.recordsOf(json, redactor.redact(where));
      const next = pager.next(json, records, res, renderer.records + records.length, redactor.redact(where));
      pending = next === undefined ? undefined : request(next, page + 1);
      renderer.addRecords(records, json);
      this.stats.records += records.length;
    }
    const sha256 = renderer.finish(`${type} (${renderer.records} records in ${pager.pageNo} pages)`);
    const size = fs.statSync(renderer.file).size;
    return { tempPath: renderer.file, name: apiFileName(spec.pattern, type, at), sha256, size, type, records: renderer.records };
  }
}

function safeHeaders(res: HttpResponse, redactor: Redactor): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined || AUTH_HEADERS.test(k)) continue;
    out[k] = redactor.redact(Array.isArray(v) ? v.join(', ') : v);
  }
  return out;
}

function archivePage(dir: string, page: ArchivedPage): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${page.type}-${String(page.page).padStart(5, '0')}.json`), JSON.stringify(page));
}

/** Paging state of one object type: which URL comes next, when to stop, and the loop guard. */
class Pager {
  pageNo = 0;
  private offset = 0;
  private pageNumber: number;
  private current = '';
  private readonly seen = new Set<string>();
  private lastPageHash = '';
  private readonly hasMore;
  private readonly total;
  private readonly cursorPath;
  private readonly nextPath;

  constructor(private readonly obj: ApiObjectConfig, private readonly maxPages: number, private readonly type: FileType) {
    this.pageNumber = obj.paging.type === 'page' ? obj.paging.base : 0;
    this.hasMore = obj.stop.hasMorePath ? compilePath(obj.stop.hasMorePath) : undefined;
    this.total = obj.stop.totalPath ? compilePath(obj.stop.totalPath) : undefined;
    this.cursorPath = obj.paging.type === 'cursor' ? compilePath(obj.paging.cursorPath) : undefined;
    this.nextPath = obj.paging.type === 'nextUrl' ? compilePath(obj.paging.nextPath) : undefined;
  }

  private withQuery(base: string, query: Record<string, string>): string {
    const u = new URL(base);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u.toString();
  }

  private baseUrl = '';
  private query: Record<string, string> = {};

  firstUrl(base: string, query: Record<string, string>): string {
    this.baseUrl = base;
    this.query = query;
    const p = this.obj.paging;
    const q = { ...query };
    if (p.type === 'offset') Object.assign(q, { [p.offsetParam]: '0', [p.limitParam]: String(p.limit) });
    if (p.type === 'page') Object.assign(q, { [p.pageParam]: String(p.base) }, p.sizeParam ? { [p.sizeParam]: String(p.size) } : {});
    if (p.type === 'cursor' && p.limitParam && p.limit) q[p.limitParam] = String(p.limit);
    this.current = this.withQuery(base, q);
    this.seen.add(this.current);
    return this.current;
  }

  /** The next page's URL, or undefined when paging is done; throws on a loop or the page cap. */
  next(body: unknown, records: unknown[], res: HttpResponse, fetched: number, where: string): string | undefined {
    this.pageNo++;
    const count = records.length;
    // The records, not the whole body: a body that differs only in its cursor or links is still the same page.
    const hash = createHash('sha256').update(JSON.stringify(records)).digest('hex');
    if (this.pageNo > 1 && hash === this.lastPageHash && count > 0) {
      throw new FetchError(`${this.type}: page ${this.pageNo} is identical to page ${this.pageNo - 1}: the API ignores the paging parameters (a loop)`, where, 'check the paging configuration (parameter names, style) against the API documentation');
    }
    this.lastPageHash = hash;
    const p = this.obj.paging;
    if (p.type === 'none') return undefined;
    const stop = this.obj.stop;
    if (count === 0 && stop.emptyPage) return undefined;
    if (this.hasMore) {
      const v = this.hasMore.get(body);
      if (v === false || v === 'false' || v === 0) return undefined;
    }
    if (this.total) {
      const t = Number(this.total.get(body));
      if (Number.isFinite(t) && fetched >= t) return undefined;
    }
    let next: string | undefined;
    switch (p.type) {
      case 'offset':
        if (stop.shortPage && count < p.limit) return undefined;
        this.offset += count > 0 ? count : p.limit;
        next = this.withQuery(this.baseUrl, { ...this.query, [p.offsetParam]: String(this.offset), [p.limitParam]: String(p.limit) });
        break;
      case 'page':
        if (stop.shortPage && count < p.size) return undefined;
        this.pageNumber++;
        next = this.withQuery(this.baseUrl, { ...this.query, [p.pageParam]: String(this.pageNumber), ...(p.sizeParam ? { [p.sizeParam]: String(p.size) } : {}) });
        break;
      case 'cursor': {
        const c = this.cursorPath!.get(body);
        if (c === undefined || c === null || c === '') return undefined;
        const cursor = String(c);
        if (this.seen.has(`cursor:${cursor}`)) throw new FetchError(`${this.type}: the API returned cursor "${cursor}" a second time after page ${this.pageNo} (a paging loop)`, where, 'the API is misbehaving; nothing was applied');
        this.seen.add(`cursor:${cursor}`);
        next = this.withQuery(this.baseUrl, { ...this.query, [p.cursorParam]: cursor, ...(p.limitParam && p.limit ? { [p.limitParam]: String(p.limit) } : {}) });
        break;
      }
      case 'nextUrl':
      case 'linkHeader': {
        const raw = p.type === 'nextUrl' ? this.nextPath!.get(body) : nextLink(header(res.headers, 'link'));
        if (raw === undefined || raw === null || raw === '') return undefined;
        next = new URL(String(raw), this.current).toString();
        if (this.seen.has(next)) throw new FetchError(`${this.type}: the API sent next URL ${next} a second time after page ${this.pageNo} (a paging loop)`, where, 'the API is misbehaving; nothing was applied');
        break;
      }
    }
    if (this.pageNo >= this.maxPages) {
      throw new FetchError(`${this.type}: more than maxPages (${this.maxPages}) pages`, where, 'raise maxPages if the data really is that large, else check the paging configuration');
    }
    this.seen.add(next!);
    this.current = next!;
    return next;
  }
}

/** Re-renders an archived fetch offline (check --replay): the same mapping and completeness checks, no network. */
export function replayArchive(archiveDir: string, cfg: ApiSourceConfig, tenant: TenantConfig, workDir: string): FetchedFile[] {
  const files: FetchedFile[] = [];
  const names = fs.readdirSync(archiveDir).filter((f) => /^(users|groups|segments)-\d{5}\.json$/.test(f)).sort();
  const at = path.basename(archiveDir);
  for (const type of FILE_TYPES) {
    const pages = names.filter((n) => n.startsWith(`${type}-`));
    if (pages.length === 0) continue;
    const obj = cfg.objects[type];
    if (!obj) throw new FetchError(`the archived fetch holds ${type} pages but the tenant's source no longer configures ${type}`);
    const spec = tenant.files[type]!;
    const renderer = new RecordRenderer(type, obj, spec, path.join(workDir, `replay-${type}.csv`));
    try {
      for (const n of pages) {
        const page = JSON.parse(fs.readFileSync(path.join(archiveDir, n), 'utf8')) as ArchivedPage;
        let json: unknown;
        try {
          json = JSON.parse(page.body);
        } catch (err) {
          throw new FetchError(`${type}: archived page ${page.page} is not valid JSON (${(err as Error).message})`, `${n} (${page.request.url})`);
        }
        renderer.addPage(json, `${n} (${page.request.url})`);
      }
      const sha256 = renderer.finish(`${type} (${renderer.records} records in ${pages.length} archived pages)`);
      files.push({ tempPath: renderer.file, name: apiFileName(spec.pattern, type, at), sha256, size: fs.statSync(renderer.file).size, type, records: renderer.records });
    } catch (err) {
      renderer.discard();
      throw err;
    }
  }
  if (files.length === 0) throw new FetchError(`${archiveDir} holds no archived pages`);
  return files;
}

