/** Small helpers shared by the benchmarks: percentiles and a markdown table printer. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fixed(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/**
 * Pings `${url}/health/live` back to back (10 ms apart) until `stop()`, which resolves with the round-trip
 * times in ms, sorted: the liveness a load balancer sees while something else keeps the server busy.
 */
export function pingLiveness(url: string): { stop(): Promise<number[]> } {
  const pings: number[] = [];
  let done = false;
  const pinger = (async () => {
    while (!done) {
      const t = performance.now();
      await (await fetch(`${url}/health/live`)).text();
      pings.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      done = true;
      await pinger;
      return pings.sort((a, b) => a - b);
    },
  };
}
