// The running package's version (package.json beside src/ or dist/), shown in the OpenAPI document.
import fs from 'node:fs';

/** The package version (package.json beside src/ or dist/). */
export function serviceVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
