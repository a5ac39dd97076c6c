/**
 * Parses a Prometheus text exposition with the reference parser: the official Prometheus Python
 * client's (Debian package python3-prometheus-client, installed by .ci/run). The npm parsers tried
 * drop the labels of histogram series, which is exactly what the tests must check.
 */
import { spawnSync } from 'node:child_process';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  /** Family name as the parser reports it (counters without their `_total` suffix). */
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'unknown' | 'info' | 'stateset' | 'gaugehistogram';
  samples: PromSample[];
}

const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)}
        for s in f.samples]})
json.dump(out, sys.stdout)
`;

export const PYTHON = '/usr/bin/python3';

export function parseExposition(text: string): PromFamily[] {
  const result = spawnSync(PYTHON, ['-c', SCRIPT], { input: text, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error || result.status !== 0) {
    throw new Error(
      `Prometheus reference parser failed (apt-get install -y python3-prometheus-client): ${
        result.error?.message ?? result.stderr
      }`,
    );
  }
  return JSON.parse(result.stdout) as PromFamily[];
}
