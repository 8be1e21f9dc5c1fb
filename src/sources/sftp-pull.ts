// The `sftp-pull` source (work in progress).
import type { SftpPullSourceConfig } from '../config/source-schema.js';
import { FetchError, type FetchContext, type FetchResult, type Source } from './source.js';

export class SftpPullSource implements Source {
  constructor(private readonly cfg: SftpPullSourceConfig) {}

  async fetch(_ctx: FetchContext): Promise<FetchResult> {
    throw new FetchError(`sftp-pull from ${this.cfg.host} is not available yet`);
  }
}
