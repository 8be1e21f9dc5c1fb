// Admission of connections that have not authenticated yet, like OpenSSH's MaxStartups "start:rate:full": up to
// `start` are all accepted; beyond it a new one is dropped with a probability rising linearly from `rate` % to
// 100 % at `full`; at `full` every new one is dropped. Optionally at most `perSubnet` per /24 (IPv4) or /64 (IPv6),
// so one network cannot take the whole allowance. A connection leaves the count once it has authenticated.
import net from 'node:net';

export interface StartupLimits {
  start: number;
  /** Percent dropped at `start`. */
  rate: number;
  full: number;
  /** Unauthenticated connections per /24 or /64; 0 = not counted. */
  perSubnet: number;
}

export const DEFAULT_STARTUP_LIMITS: StartupLimits = { start: 64, rate: 30, full: 256, perSubnet: 32 };

/** The /24 of an IPv4 address or the /64 of an IPv6 address, as a key. */
export function subnetOf(ip: string): string {
  if (net.isIPv4(ip)) return ip.split('.').slice(0, 3).join('.') + '.0/24';
  if (net.isIPv6(ip)) {
    // Expand "::" so the first four groups are the /64.
    const [head, tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':') + '::/64';
  }
  return ip;
}

export type Admission = { ok: true; release: () => void } | { ok: false; reason: string };

export class StartupGate {
  private total = 0;
  private readonly bySubnet = new Map<string, number>();

  constructor(
    private readonly limits: StartupLimits,
    private readonly random: () => number = Math.random,
  ) {}

  get unauthenticated(): number {
    return this.total;
  }

  admit(ip: string): Admission {
    const { start, rate, full, perSubnet } = this.limits;
    if (this.total >= full) return { ok: false, reason: `too many unauthenticated connections (${this.total}, limit ${full})` };
    if (this.total >= start) {
      const p = (rate + ((100 - rate) * (this.total - start)) / Math.max(1, full - start)) / 100;
      if (this.random() < p) return { ok: false, reason: `too many unauthenticated connections (${this.total}, dropping from ${start})` };
    }
    const subnet = subnetOf(ip);
    const inSubnet = this.bySubnet.get(subnet) ?? 0;
    if (perSubnet > 0 && inSubnet >= perSubnet) {
      return { ok: false, reason: `too many unauthenticated connections from ${subnet} (limit ${perSubnet})` };
    }
    this.total++;
    this.bySubnet.set(subnet, inSubnet + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const n = (this.bySubnet.get(subnet) ?? 1) - 1;
        if (n > 0) this.bySubnet.set(subnet, n);
        else this.bySubnet.delete(subnet);
      },
    };
  }
}
