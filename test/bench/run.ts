/**
 * `npm run bench [name...]`: runs the benchmarks and prints markdown for docs/benchmarks.md. Each one
 * compares against a baseline measured in the same process/run, never against a stored number.
 */
import { runEvictionBench } from './eviction.bench.js';
import { runFleetBench } from './fleet.bench.js';
import { runHardeningBench } from './hardening.bench.js';
import { runImageBench, runImageLivenessBench } from './image.bench.js';
import { runLlmParallelBench } from './llm-parallel.bench.js';
import { runLlmBench } from './llm.bench.js';
import { runProxyBench } from './proxy.bench.js';
import { runRemoteBench } from './remote.bench.js';
import { runRestartBench } from './restart.bench.js';
import { runStateBench } from './state.bench.js';

const BENCHES: Record<string, () => Promise<string>> = {
  llm: runLlmBench,
  'llm-parallel': runLlmParallelBench,
  image: runImageBench,
  'image-liveness': runImageLivenessBench,
  eviction: runEvictionBench,
  fleet: runFleetBench,
  remote: runRemoteBench,
  proxy: runProxyBench,
  restart: runRestartBench,
  state: runStateBench,
  hardening: runHardeningBench,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
  for (const name of names) {
    const bench = BENCHES[name];
    if (!bench) throw new Error(`unknown benchmark '${name}' (known: ${Object.keys(BENCHES).join(', ')})`);
    const started = Date.now();
    process.stdout.write(`${await bench()}\n\n_(${name}: ${((Date.now() - started) / 1000).toFixed(1)} s)_\n\n`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
