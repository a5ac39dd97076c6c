import { Writable } from 'node:stream';
import { ConfigError } from '../../src/config/config.loader.js';
import { createRootLogger } from '../../src/logging/logging.js';
import { configFrom } from '../support/config.js';

function issues(yaml: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  try {
    configFrom(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

function collect(): Writable & { text: string } {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      sink.text += chunk.toString('utf8');
      done();
    },
  }) as Writable & { text: string };
  sink.text = '';
  return sink;
}

describe('log_format', () => {
  it('defaults to automatic (pretty on a TTY, JSON otherwise)', () => {
    expect(configFrom({ backends: [] }).logFormat).toBeNull();
  });

  it('accepts json and pretty, from the file or MODELPLANE_LOG_FORMAT', () => {
    expect(configFrom({ log_format: 'pretty', backends: [] }).logFormat).toBe('pretty');
    expect(configFrom({ backends: [] }, { MODELPLANE_LOG_FORMAT: 'json' }).logFormat).toBe('json');
  });

  it('rejects anything else, naming the field', () => {
    expect(issues({ log_format: 'xml', backends: [] }).map((i) => i.field)).toContain('log_format');
    expect(issues({ backends: [] }, { MODELPLANE_LOG_FORMAT: 'text' }).map((i) => i.field)).toContain(
      'MODELPLANE_LOG_FORMAT (log_format)',
    );
  });

  it('json writes one JSON object per line; pretty writes readable lines', () => {
    const json = collect();
    createRootLogger(configFrom({ log_format: 'json', backends: [] }), { stream: json }).info({ a: 1 }, 'hello');
    expect(JSON.parse(json.text.trim())).toMatchObject({ level: 'info', msg: 'hello', a: 1, service: 'modelplane' });

    const pretty = collect();
    createRootLogger(configFrom({ log_format: 'pretty', backends: [] }), { stream: pretty }).info('hello');
    expect(pretty.text).toMatch(/INFO.*hello/);
    expect(() => {
      JSON.parse(pretty.text.trim());
    }).toThrow(SyntaxError);
  });

  it('follows log_level', () => {
    const sink = collect();
    const log = createRootLogger(configFrom({ log_level: 'warn', backends: [] }), { stream: sink });
    log.info('quiet');
    log.warn('loud');
    expect(sink.text).not.toContain('quiet');
    expect(sink.text).toContain('loud');
  });
});
