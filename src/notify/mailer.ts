// Outgoing mail over SMTP (nodemailer). A send runs in the background: a failure is logged and tried again with
// a doubling delay, and never blocks or fails the sync that asked for it.
import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/schema.js';

export interface MailSettings {
  host: string;
  port: number;
  secure: boolean;
  requireTls: boolean;
  user?: string;
  password?: string;
  from: string;
  attempts: number;
  initialDelayMs: number;
}

export interface Mail {
  to: string[];
  subject: string;
  text: string;
  attachments?: { filename: string; content: string }[];
  /** For the log: what the mail is about (never its content). */
  about: Record<string, unknown>;
}

/** Mail settings from the service config and env (WT_SYNC_SMTP_HOST, _PORT, _USER, _PASSWORD, _FROM); null when mail is off. */
export function mailSettings(service: ServiceConfig, env: NodeJS.ProcessEnv = process.env): MailSettings | null {
  const smtp = service.smtp;
  const host = env.WT_SYNC_SMTP_HOST || smtp?.host;
  if (!host) return null;
  const port = env.WT_SYNC_SMTP_PORT ? Number(env.WT_SYNC_SMTP_PORT) : smtp?.port ?? 587;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`WT_SYNC_SMTP_PORT must be a port number 1–65535, got "${env.WT_SYNC_SMTP_PORT}"`);
  return {
    host,
    port,
    secure: smtp?.secure ?? port === 465,
    requireTls: smtp?.requireTls ?? false,
    user: env.WT_SYNC_SMTP_USER || smtp?.user,
    password: env.WT_SYNC_SMTP_PASSWORD || smtp?.password,
    from: env.WT_SYNC_SMTP_FROM || smtp?.from || 'wt-sync <wt-sync@localhost>',
    attempts: smtp?.attempts ?? 6,
    initialDelayMs: (smtp?.initialDelaySeconds ?? 30) * 1000,
  };
}

export class Mailer {
  private readonly transport: Transporter;
  private readonly log: Logger;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly settings: MailSettings, logger: Logger) {
    this.log = logger.child({ component: 'mail' });
    this.transport = nodemailer.createTransport({
      host: settings.host,
      port: settings.port,
      secure: settings.secure,
      requireTLS: settings.requireTls,
      auth: settings.user ? { user: settings.user, pass: settings.password ?? '' } : undefined,
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 60_000,
    });
  }

  /** Per tenant, mails leave in the order they were queued (a retry holds back only that tenant's later mails). */
  private readonly chains = new Map<string, Promise<void>>();

  /** Queues a mail; returns at once. */
  send(mail: Mail): void {
    if (this.closed || mail.to.length === 0) return;
    const key = String(mail.about.tenant ?? '');
    const p = (this.chains.get(key) ?? Promise.resolve()).then(() => this.deliver(mail)).catch(() => undefined);
    this.chains.set(key, p);
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      if (this.chains.get(key) === p) this.chains.delete(key);
    });
  }

  private async deliver(mail: Mail): Promise<void> {
    const { attempts, initialDelayMs } = this.settings;
    for (let attempt = 1; attempt <= attempts && !this.closed; attempt++) {
      try {
        const info = await this.transport.sendMail({ from: this.settings.from, to: mail.to, subject: mail.subject, text: mail.text, attachments: mail.attachments });
        this.log.info({ ...mail.about, recipients: mail.to.length, attempt, messageId: info.messageId }, 'mail sent');
        return;
      } catch (err) {
        const last = attempt === attempts;
        const delay = initialDelayMs * 2 ** (attempt - 1);
        const fields = { ...mail.about, attempt, attempts, err: (err as Error).message };
        if (last) this.log.error(fields, 'mail could not be sent; giving up');
        else this.log.warn({ ...fields, retryInMs: delay }, 'mail could not be sent; will try again');
        if (!last) await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      t.unref();
      this.timers.add(t);
    });
  }

  /** Resolves when every queued mail was sent or given up (tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Lets mails being sent finish (bounded); pending retries are dropped (logged). */
  async close(graceMs = 5000): Promise<void> {
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.closed = true;
    if (this.timers.size) this.log.warn({ pending: this.timers.size }, 'mails waiting for a retry are dropped at shutdown');
    for (const t of this.timers) clearTimeout(t);
    this.transport.close();
  }
}
