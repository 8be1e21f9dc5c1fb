// `${env:NAME}` and `${tenant}` in a source's strings. Secrets come from the environment only, and every value
// read from it is registered with the redactor.
import type { TenantConfig } from '../config/schema.js';
import type { Redactor } from './redact.js';
import { FetchError } from './source.js';

/** Resolves `${env:NAME}` (from the environment only; every value found counts as a secret) and `${tenant}`. */
export function makeResolver(tenant: TenantConfig, env: NodeJS.ProcessEnv, redactor: Redactor): (s: string) => string {
  return (s) => s.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}|\$\{tenant\}/g, (m, name: string | undefined) => {
    if (name === undefined) return tenant.id;
    const v = env[name];
    if (v === undefined || v === '') throw new FetchError(`the environment variable ${name} is not set (tenant ${tenant.id}, ${m})`, undefined, `set ${name} in the service's environment`);
    redactor.add(v);
    redactor.add(encodeURIComponent(v));
    return v;
  });
}

