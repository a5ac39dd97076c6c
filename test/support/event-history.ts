/** One event as GET /api/events sends it. */
export interface SseEvent {
  type: string;
  seq?: number;
  from?: string;
  to?: string;
  was_loaded?: boolean;
  [field: string]: unknown;
}

/** The buffered events: GET /api/events?since=0 replays the history, then says `: connected`. Bounded by 5 s. */
export async function eventHistory(url: string): Promise<SseEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 5000);
  const events: SseEvent[] = [];
  try {
    const res = await fetch(`${url}/api/events?since=0`, { signal: abort.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes(': connected\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    for (const block of text.split('\n\n')) {
      const data = block.split('\n').find((line) => line.startsWith('data: '));
      if (data) events.push(JSON.parse(data.slice('data: '.length)) as SseEvent);
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}
