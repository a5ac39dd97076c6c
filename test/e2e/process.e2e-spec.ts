/** The real entry point as a user starts it: exit code 2 on a bad config, exit 0 on SIGTERM. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = join(process.cwd(), 'dist', 'src', 'main.js');

function writeConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mp-proc-'));
  const file = join(dir, 'modelplane.yaml');
  writeFileSync(file, text);
  return file;
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, NODE_OPTIONS: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('listening on')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('modelplane process', () => {
  beforeAll(() => {
    // The entry point runs compiled, as `npm start` does.
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  }, 120_000);

  it('exits with code 2 and names every bad field on an invalid config', async () => {
    const file = writeConfig(
      'eviction: { check_interval_s: 0, idle_unload_s: -5 }\nbackends:\n  - { name: npu, type: rknn-sd }\n  - { name: x, type: tensorrt }\n',
    );
    const result = await run(['--config', file]);
    expect(result.code).toBe(2);
    for (const field of [
      'eviction.check_interval_s',
      'eviction.idle_unload_s',
      'backends[0].url',
      'backends[1].type',
    ]) {
      expect(result.stderr).toContain(field);
    }
  });

  it('exits with code 2 on unparseable YAML', async () => {
    const result = await run(['--config', writeConfig('server: [unclosed')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/yaml/i);
  });

  it('exits with code 2 when the config file does not exist', async () => {
    const result = await run([], { MODELPLANE_CONFIG: '/nonexistent/modelplane.yaml' });
    expect(result.code).toBe(2);
  });

  it('shuts down cleanly with exit code 0 on SIGTERM', async () => {
    const result = await run(['--config', writeConfig('server: { port: 0 }\nbackends: []\n')]);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('SIGTERM received');
  });
});
