/**
 * The raw HTTP a fleet node needs towards its peers beyond what a provider does: relaying a client's request
 * byte for byte (status, headers and a streamed body come back untouched) and asking a peer's eviction plan.
 * One keep-alive pool per peer: a routed request reuses the connection, which keeps routing overhead small.
 */
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';

export interface RelayedAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export class PeerRelay {
  private readonly agents = new Map<string, Agent>();

  /** POST `body` to `url`; throws only when no answer came (refused, reset, aborted). */
  async post(url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal): Promise<RelayedAnswer> {
    const res = await request(url, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal,
      dispatcher: this.agent(new URL(url).origin),
    });
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }

  /** Whether the peer says it can load `model` without evicting anything; false on any failure or after `timeoutMs`. */
  async fitsWithoutEvicting(origin: string, model: string, timeoutMs: number): Promise<boolean> {
    try {
      const res = await request(`${origin}/api/eviction/plan?load=${encodeURIComponent(model)}`, {
        signal: AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        dispatcher: this.agent(origin),
      });
      const plan = (await res.body.json()) as { fits?: unknown; evict?: unknown };
      return res.statusCode === 200 && plan.fits === true && Array.isArray(plan.evict) && plan.evict.length === 0;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
    this.agents.clear();
  }

  private agent(origin: string): Agent {
    let agent = this.agents.get(origin);
    if (!agent) {
      agent = new Agent({ keepAliveTimeout: 10_000 });
      this.agents.set(origin, agent);
    }
    return agent;
  }
}
