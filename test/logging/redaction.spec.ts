/**
 * Credentials never reach a log line: header fields are redacted by path, and the configured tokens
 * and keys are masked wherever else they turn up (a message, an error, an object nested deeper than
 * the paths reach). Lines stay JSON.
 */
import { Writable } from 'node:stream';
import { configuredSecrets, createRootLogger, maskSecrets } from '../../src/logging/logging.js';
import { configFrom } from '../support/config.js';

const ADMIN = 'admin-token-3f9c1a';
const API_KEY = 'api-key-7d2e5b';
const BACKEND_KEY = 'sk-upstream-"quoted"-key';

class Lines extends Writable {
  readonly text: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
}

function logger() {
  const config = configFrom({
    server: { admin_token: ADMIN, api_key: API_KEY },
    log_format: 'json',
    backends: [{ name: 'cloud', type: 'openai', url: 'http://127.0.0.1:9', api_key: BACKEND_KEY, models: [] }],
  });
  const lines = new Lines();
  return { log: createRootLogger(config, { stream: lines }), lines, config };
}

describe('log redaction', () => {
  it('redacts authorization and x-api-key headers wherever a request or header object is logged', () => {
    const { log, lines } = logger();
    const headers = { authorization: 'Bearer client-secret-1', 'x-api-key': 'client-secret-2', accept: 'text/plain' };
    log.info({ req: { headers } }, 'with a request');
    log.info({ headers }, 'with headers');
    const parsed = lines.text.map((l) => JSON.parse(l) as { req?: { headers: object }; headers?: object });
    for (const h of [parsed[0]!.req!.headers, parsed[1]!.headers]) {
      expect(h).toEqual({ authorization: '[redacted]', 'x-api-key': '[redacted]', accept: 'text/plain' });
    }
    expect(lines.text.join('\n')).not.toMatch(/client-secret/);
  });

  it('never writes a configured token or key, in a message, an error or a deeply nested config', () => {
    const { log, lines, config } = logger();
    log.info(`admin token is ${ADMIN}`);
    log.warn({ config: { server: { admin_token: ADMIN, api_key: API_KEY } } }, 'config dump');
    log.error({ err: new Error(`upstream said: bad key ${BACKEND_KEY}`) }, 'proxy failed');
    log.info({ snapshot: config }, 'the whole config');
    expect(lines.text).toHaveLength(4);
    for (const line of lines.text) {
      // Still JSON after masking.
      expect(() => JSON.parse(line) as unknown).not.toThrow();
      for (const secret of [ADMIN, API_KEY, BACKEND_KEY, JSON.stringify(BACKEND_KEY).slice(1, -1)]) {
        expect(line).not.toContain(secret);
      }
    }
    expect((JSON.parse(lines.text[0]!) as { msg: string }).msg).toBe('admin token is [redacted]');
  });

  it('collects every configured credential, once each', () => {
    const { config } = logger();
    expect(configuredSecrets(config).sort()).toEqual([ADMIN, API_KEY, BACKEND_KEY].sort());
  });

  it("keeps logs readable with a too-short key: 'k' is not masked out of every word", () => {
    const config = configFrom({
      server: { admin_token: ADMIN, api_key: 'k' },
      fleet: { admin_token: 'fleet-token-91ab' },
      backends: [],
    });
    expect(configuredSecrets(config).sort()).toEqual([ADMIN, 'fleet-token-91ab'].sort());
    const lines = new Lines();
    createRootLogger(config, { stream: lines }).info('keep-alive sent to kubelet');
    expect(JSON.parse(lines.text[0]!)).toMatchObject({ msg: 'keep-alive sent to kubelet' });
  });

  it('leaves a line without secrets unchanged', () => {
    const line = '{"level":"info","msg":"listening on http://127.0.0.1:8080"}';
    expect(maskSecrets(line, [ADMIN])).toBe(line);
  });
});
