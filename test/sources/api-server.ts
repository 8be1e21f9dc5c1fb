// A real HTTP server on 127.0.0.1 (node:http) standing in for an HR vendor's API: each test gives the answers,
// fixture pages come from test/fixtures/sources/ with {{BASE}} replaced by the server's address.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { REPO } from '../helpers/workspace.js';

export interface ApiRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ApiAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** A string is sent as is, anything else as JSON. */
  body?: unknown;
  delayMs?: number;
}

export type Handler = (req: ApiRequest) => ApiAnswer | Promise<ApiAnswer>;

export interface ApiServer {
  base: string;
  requests: ApiRequest[];
  handler: Handler;
  close(): Promise<void>;
}

export async function startApiServer(handler: Handler = () => ({ status: 404 })): Promise<ApiServer> {
  const requests: ApiRequest[] = [];
  const state: ApiServer = { base: '', requests, handler, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const r: ApiRequest = { method: req.method ?? 'GET', url: new URL(req.url ?? '/', state.base), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(r);
      try {
        const a = await state.handler(r);
        if (a.delayMs) await new Promise((d) => setTimeout(d, a.delayMs));
        const body = a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...a.headers });
        res.end(body);
      } catch (err) {
        res.writeHead(500);
        res.end(String(err));
      }
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return state;
}

export const FIXTURES = path.join(REPO, 'test/fixtures/sources');

/** A fixture page, parsed, with {{BASE}} pointing at the server. */
export function page(name: string, base: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8').replaceAll('{{BASE}}', base));
}

/** An example tenant file from examples/sources/, its vendor URLs pointed at the local server. */
export function exampleTenant(name: string, base: string): Record<string, unknown> {
  const text = fs.readFileSync(path.join(REPO, 'examples/sources', `${name}.yaml`), 'utf8').replace(/https:\/\/[a-z.-]+\.example/g, base);
  return YAML.parse(text) as Record<string, unknown>;
}

export function bearer(req: ApiRequest): string | undefined {
  const a = req.headers.authorization;
  return a?.startsWith('Bearer ') ? a.slice(7) : undefined;
}
