// Paths into JSON bodies and records: `data`, `work.email`, `items[0].id`, `departments[*].id` (every element),
// `@odata.nextLink` and `_meta.links.next`. A key that itself holds dots is found as is: at each level the
// longest run of the remaining segments that names a key wins, so `@odata.nextLink` needs no quoting.
// Pure functions, no I/O.

type Step = { key: string } | { index: number } | { all: true };

export interface CompiledPath {
  readonly text: string;
  readonly multi: boolean;
  /** The value, or for a path with `[*]` the list of values (undefined elements dropped). */
  get(root: unknown): unknown;
}

export function compilePath(text: string): CompiledPath {
  const steps: Step[] = [];
  if (text !== '') {
    for (const segment of text.split('.')) {
      const m = /^([^[\]]*)((?:\[(?:\d+|\*)\])*)$/.exec(segment);
      if (!m) throw new Error(`path "${text}": cannot read segment "${segment}" (use a.b, a[0], a[*].b)`);
      if (m[1] !== '') steps.push({ key: m[1] });
      for (const [, idx] of m[2].matchAll(/\[(\d+|\*)\]/g)) steps.push(idx === '*' ? { all: true } : { index: Number(idx) });
    }
  }
  const multi = steps.some((s) => 'all' in s);
  return {
    text,
    multi,
    get(root) {
      const out: unknown[] = [];
      walk(root, steps, 0, out, multi);
      return multi ? out.filter((v) => v !== undefined && v !== null) : out[0];
    },
  };
}

function walk(value: unknown, steps: Step[], i: number, out: unknown[], multi: boolean): void {
  if (i === steps.length) {
    out.push(value);
    return;
  }
  const step = steps[i];
  if (value === null || typeof value !== 'object') {
    if (!multi) out.push(undefined);
    return;
  }
  if ('all' in step) {
    if (Array.isArray(value)) for (const v of value) walk(v, steps, i + 1, out, multi);
    return;
  }
  if ('index' in step) {
    walk(Array.isArray(value) ? value[step.index] : undefined, steps, i + 1, out, multi);
    return;
  }
  // Longest run of key segments that is a key here: `@odata.nextLink` before `@odata` → `nextLink`.
  const obj = value as Record<string, unknown>;
  let end = i;
  while (end + 1 < steps.length && 'key' in steps[end + 1]) end++;
  for (let j = end; j > i; j--) {
    const joined = steps.slice(i, j + 1).map((s) => (s as { key: string }).key).join('.');
    if (Object.prototype.hasOwnProperty.call(obj, joined)) {
      walk(obj[joined], steps, j + 1, out, multi);
      return;
    }
  }
  walk(Object.prototype.hasOwnProperty.call(obj, step.key) ? obj[step.key] : undefined, steps, i + 1, out, multi);
}
