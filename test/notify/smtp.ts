// A real SMTP server (npm smtp-server) on loopback for tests, keeping every message it accepts, plus a small
// MIME reader for what nodemailer sends (headers, text part, attachments).
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
  text: string;
  attachments: { filename: string; content: string }[];
  user: string | undefined;
}

export interface TestSmtp {
  port: number;
  mails: ReceivedMail[];
  /** Answers of the next DATA commands: a string refuses with that message (451, temporary). */
  refuseNext(times: number): void;
  attempts: number;
  close(): Promise<void>;
}

function decode(body: string, headers: string): string {
  const enc = /content-transfer-encoding:\s*(\S+)/i.exec(headers)?.[1]?.toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc === 'quoted-printable') {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

function decodeHeader(v: string): string {
  return v.replace(/\r?\n\s+/g, ' ').replace(/=\?utf-8\?([BQ])\?([^?]*)\?=\s*/gi, (_m, kind: string, data: string) =>
    kind.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'));
}

export function parseMail(raw: string): Pick<ReceivedMail, 'subject' | 'text' | 'attachments'> {
  const split = (s: string) => {
    const i = s.search(/\r?\n\r?\n/);
    return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i).replace(/^\r?\n\r?\n/, '')];
  };
  const [head, body] = split(raw);
  const subject = decodeHeader(/^subject:\s*(.*(?:\r?\n\s+.*)*)/im.exec(head)?.[1] ?? '');
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(head)?.[1];
  if (!boundary) return { subject, text: decode(body, head), attachments: [] };
  const parts = body.split(`--${boundary}`).slice(1, -1);
  let text = '';
  const attachments: { filename: string; content: string }[] = [];
  for (const part of parts) {
    const [h, b] = split(part.replace(/^\r?\n/, ''));
    const filename = /filename="?([^";\r\n]+)"?/i.exec(h)?.[1];
    const content = decode(b.replace(/\r?\n$/, ''), h);
    if (filename) attachments.push({ filename, content });
    else if (/text\/plain/i.test(h)) text = content;
  }
  return { subject, text, attachments };
}

export async function startSmtp(opts: { users?: Record<string, string> } = {}): Promise<TestSmtp> {
  let refusals = 0;
  const state = { attempts: 0 };
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: !opts.users,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, cb) {
      if (opts.users && opts.users[auth.username ?? ''] === auth.password) return cb(null, { user: auth.username });
      return cb(new Error('Invalid username or password'));
    },
    onData(stream, session: SMTPServerSession, cb) {
      state.attempts++;
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (refusals > 0) {
          refusals--;
          const err = Object.assign(new Error('try again later'), { responseCode: 451 });
          return cb(err);
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw, user: session.user as string | undefined, ...parseMail(raw),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    mails,
    refuseNext(times) {
      refusals = times;
    },
    get attempts() {
      return state.attempts;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
