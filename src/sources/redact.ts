// Secrets a fetch resolved (tokens, passwords, client secrets, API keys, their encodings) are cut out of
// anything it reports, logs or archives.
export class Redactor {
  private readonly secrets = new Set<string>();

  add(value: string | undefined): void {
    // Very short values would blank out ordinary text; a secret is never that short in practice.
    if (value && value.length >= 4) this.secrets.add(value);
  }

  redact(text: string): string {
    let out = text;
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join('[redacted]');
    return out;
  }
}

/** Header names whose values are credentials whatever they hold. */
export const AUTH_HEADERS = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token)$/i;
