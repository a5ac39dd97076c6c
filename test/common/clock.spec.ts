import { SystemClock } from '../../src/common/clock.js';
import { FakeClock } from '../support/fake-clock.js';

describe('Clock.delay', () => {
  it('FakeClock resolves a delay only once advance() passes it, in due order', async () => {
    const clock = new FakeClock();
    const order: string[] = [];
    const long = clock.delay(100).then(() => order.push('100'));
    const short = clock.delay(50).then(() => order.push('50'));
    expect(clock.pendingDelays).toBe(2);
    clock.advance(49);
    await Promise.resolve();
    expect(order).toEqual([]);
    clock.advance(51);
    await Promise.all([long, short]);
    expect(order).toEqual(['50', '100']);
    expect(clock.pendingDelays).toBe(0);
  });

  it.each([
    ['FakeClock', new FakeClock()],
    ['SystemClock', new SystemClock()],
  ])('%s rejects with the signal reason when aborted, before or while waiting', async (_, clock) => {
    const reason = new Error('stop');
    await expect(clock.delay(60_000, AbortSignal.abort(reason))).rejects.toBe(reason);
    const controller = new AbortController();
    const waiting = clock.delay(60_000, controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });
});
