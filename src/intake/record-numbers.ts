// A source that renders records as CSV (api) writes one header line and one physical line per record, so line N
// of the rendering is record N − 1 of the fetch: problems are told in the customer's terms, records.
import type { Problem } from '../model.js';

export function lineToRecord(p: Problem): Problem {
  if (p.line === undefined && !/\blines? \d/.test(p.message)) return p;
  const { line, ...rest } = p;
  const out: Problem = {
    ...rest,
    message: p.message.replace(/\blines (\d+) and (\d+)/g, (_m, a, b) => `records ${Number(a) - 1} and ${Number(b) - 1}`)
      .replace(/\bline (\d+)/g, (_m, a) => `record ${Number(a) - 1}`),
  };
  if (p.hint) out.hint = p.hint.replace(/\blines (\d+) and (\d+)/g, (_m, a, b) => `records ${Number(a) - 1} and ${Number(b) - 1}`).replace(/\bline (\d+)/g, (_m, a) => `record ${Number(a) - 1}`);
  if (line !== undefined && line > 1) out.record = line - 1;
  return out;
}
