// The writing half of a large staging file (src/snapshot/staging.ts), on its own thread: batches of rows arrive
// from the parsing thread, are checked for duplicates and stored in order; `finish` builds the index, commits, and
// hands back the duplicates found, which the parser reports as it would have at the time.
import { parentPort, workerData } from 'node:worker_threads';
import type { DeferredConflict } from '../parse/parse-file.js';
import { StagingFile, type StagingReply, type StagingRow } from './staging.js';

type Message = { type: 'rows'; rows: StagingRow[] } | { type: 'finish' };

const port = parentPort!;
const reply = (m: StagingReply) => port.postMessage(m);
let file: StagingFile;
const conflicts: DeferredConflict[] = [];
try {
  file = new StagingFile((workerData as { file: string }).file);
  port.on('message', (m: Message) => {
    try {
      if (m.type === 'rows') {
        for (const [line, externalId, username, data, hash] of m.rows) {
          const conflict = file.add(line, externalId, username, data, hash);
          if (conflict !== null) conflicts.push({ line, externalId, username, conflict });
        }
        reply({ type: 'ack', rows: file.rows });
      } else {
        file.finish();
        reply({ type: 'done', rows: file.rows, conflicts });
      }
    } catch (err) {
      file.close();
      reply({ type: 'error', message: (err as Error).message });
    }
  });
} catch (err) {
  reply({ type: 'error', message: (err as Error).message });
}
