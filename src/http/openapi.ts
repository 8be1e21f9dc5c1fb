// The OpenAPI 3.1 document of the JSON API, built from the routes' own fastify schemas (the ones that validate
// requests and shape responses), so the document cannot drift from what the server does.
import type { FastifyInstance, RouteOptions } from 'fastify';

interface RouteSchema {
  summary?: string;
  description?: string;
  tags?: string[];
  params?: JsonSchema;
  querystring?: JsonSchema;
  body?: JsonSchema;
  response?: Record<string, JsonSchema & { description?: string }>;
  /** Routes that need no bearer token say so with `security: []`. */
  security?: unknown[];
  produces?: string[];
}

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema & { description?: string }>;
  required?: string[];
  [key: string]: unknown;
}

export interface CollectedRoute {
  method: string;
  url: string;
  schema: RouteSchema;
}

/** Records every route added from now on (call before adding them). */
export function collectRoutes(server: FastifyInstance): CollectedRoute[] {
  const routes: CollectedRoute[] = [];
  server.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || !route.schema) continue;
      routes.push({ method: method.toLowerCase(), url: route.url, schema: route.schema as RouteSchema });
    }
  });
  return routes;
}

function parameters(where: 'path' | 'query', schema: JsonSchema | undefined) {
  if (!schema?.properties) return [];
  return Object.entries(schema.properties).map(([name, s]) => ({
    name, in: where, required: where === 'path' || (schema.required ?? []).includes(name),
    ...(s.description ? { description: s.description } : {}),
    schema: Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'description')),
  }));
}

export function openApiDocument(routes: CollectedRoute[], opts: { title: string; version: string; prefix: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (!r.url.startsWith(opts.prefix)) continue;
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    for (const [code, schema] of Object.entries(r.schema.response ?? {})) {
      const { description, ...body } = schema;
      const types = r.schema.produces ?? ['application/json'];
      responses[code] = { description: description ?? (code.startsWith('2') ? 'OK' : 'Error'), content: Object.fromEntries(types.map((t) => [t, { schema: body }])) };
    }
    paths[path] ??= {};
    paths[path][r.method] = {
      ...(r.schema.summary ? { summary: r.schema.summary } : {}),
      ...(r.schema.description ? { description: r.schema.description } : {}),
      ...(r.schema.tags ? { tags: r.schema.tags } : {}),
      ...(r.schema.security ? { security: r.schema.security } : {}),
      parameters: [...parameters('path', r.schema.params), ...parameters('query', r.schema.querystring)],
      ...(r.schema.body ? { requestBody: { content: { 'application/json': { schema: r.schema.body } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: opts.title, version: opts.version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the value of WT_SYNC_API_TOKEN' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
