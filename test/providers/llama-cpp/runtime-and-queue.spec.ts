import { availableParallelism } from 'node:os';
import { availableCores } from '../../../src/common/machine.js';
import { defaultLlamaThreads, LlamaRuntime } from '../../../src/providers/llama-cpp/llama-runtime.js';
import {
  QueueFullError,
  QueueWaitExceededError,
  RequestQueue,
} from '../../../src/providers/llama-cpp/request-queue.js';
import { FakeClock } from '../../support/fake-clock.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('thread defaults', () => {
  it('leave one core to the event loop, never going below one thread', () => {
    expect(defaultLlamaThreads(1)).toBe(1);
    expect(defaultLlamaThreads(2)).toBe(1);
    expect(defaultLlamaThreads(8)).toBe(7);
  });

  it('count no more cores than the scheduler allows', () => {
    const cores = availableCores();
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(cores).toBeLessThanOrEqual(availableParallelism());
  });

  it('use the configured thread count over the default', () => {
    expect(new LlamaRuntime({ threads: 3 }).threads).toBe(3);
    expect(new LlamaRuntime().threads).toBe(defaultLlamaThreads());
  });
});

describe('LlamaRuntime', () => {
  it('creates one Llama for concurrent first callers and frees it on dispose', async () => {
    const runtime = new LlamaRuntime({ gpu: false, threads: 1 });
    try {
      expect(runtime.peek()).toBeNull();
      const [a, b] = await Promise.all([runtime.get(), runtime.get()]);
      expect(a).toBe(b);
      expect(await runtime.get()).toBe(a);
      expect(runtime.peek()).toBe(a);
      expect(a.gpu).toBe(false);
      expect(a.maxThreads).toBe(1);
    } finally {
      await runtime.dispose();
    }
    expect(runtime.peek()).toBeNull();
  });
});

describe('RequestQueue', () => {
  it('runs tasks one at a time in arrival order', async () => {
    const queue = new RequestQueue(10);
    const log: string[] = [];
    const gate = deferred();
    const first = queue.run(undefined, async () => {
      log.push('a start');
      await gate.promise;
      log.push('a end');
    });
    const second = queue.run(undefined, async () => {
      log.push('b');
    });
    expect(queue.size).toBe(2);
    gate.resolve();
    await Promise.all([first, second]);
    expect(log).toEqual(['a start', 'a end', 'b']);
    expect(queue.size).toBe(0);
  });

  it('keeps going after a failed task', async () => {
    const queue = new RequestQueue(10);
    const failed = queue.run(undefined, async () => {
      throw new Error('boom');
    });
    const next = queue.run(undefined, async () => 'ok');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
  });

  it('drops a waiter whose signal aborts, without running it', async () => {
    const queue = new RequestQueue(10);
    const gate = deferred();
    const running = queue.run(undefined, () => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const waiting = queue.run(controller.signal, async () => {
      ran = true;
    });
    controller.abort(new Error('client left'));
    await expect(waiting).rejects.toThrow('client left');
    expect(queue.size).toBe(1);
    gate.resolve();
    await running;
    expect(ran).toBe(false);
  });

  it('sends away a waiter that got no turn within the wait bound, and leaves no timer behind for one that did', async () => {
    const clock = new FakeClock();
    const queue = new RequestQueue(10, 1, { maxMs: 5000, delay: (ms, signal) => clock.delay(ms, signal) });
    const gate = deferred();
    const running = queue.run(undefined, () => gate.promise);
    let ran = false;
    const gaveUp = queue.run(undefined, async () => {
      ran = true;
    });
    clock.advance(2000);
    const served = queue.run(undefined, async () => 'served');
    clock.advance(2999);
    expect(queue.queued).toBe(2);
    clock.advance(1);
    await expect(gaveUp).rejects.toBeInstanceOf(QueueWaitExceededError);
    expect(ran).toBe(false);
    expect(queue.queued).toBe(1);
    gate.resolve();
    await running;
    await expect(served).resolves.toBe('served');
    expect(clock.pendingDelays).toBe(0);
  });

  it('refuses at once when the waiting line is full', async () => {
    const queue = new RequestQueue(1);
    const gate = deferred();
    const running = queue.run(undefined, () => gate.promise);
    const waiting = queue.run(undefined, async () => 'second');
    await expect(queue.run(undefined, async () => 'third')).rejects.toBeInstanceOf(QueueFullError);
    gate.resolve();
    await running;
    await expect(waiting).resolves.toBe('second');
  });

  it('runs up to `concurrency` tasks at once and admits the rest first-come, first-served', async () => {
    const queue = new RequestQueue(10, 2);
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      queue.run(undefined, async () => {
        started.push(i);
        await g.promise;
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1]);
    expect([queue.active, queue.queued]).toEqual([2, 2]);
    gates[1]!.resolve();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2]);
    // A newcomer arriving while someone waits joins the line instead of taking a turn freed for the waiter.
    gates[0]!.resolve();
    const late = queue.run(undefined, async () => started.push(9));
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2, 3]);
    gates[2]!.resolve();
    gates[3]!.resolve();
    await Promise.all([...runs, late]);
    expect(started).toEqual([0, 1, 2, 3, 9]);
    expect([queue.active, queue.queued]).toEqual([0, 0]);
  });
});
