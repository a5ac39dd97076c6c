/**
 * The eviction reason label of modelplane_evictions_total: a closed set, whatever text an unload event
 * carries, so a label value never holds a model id or free text.
 */
import { EVICTION_REASONS, evictionReason } from '../../src/metrics/metrics.service.js';

describe(evictionReason.name, () => {
  it.each(EVICTION_REASONS)('takes the event reason_code %s as it is', (code) => {
    expect(evictionReason({ reason_code: code, reason: 'anything at all' })).toBe(code);
  });

  it.each([
    ['idle', 'idle'],
    ['admin request', 'admin'],
    ["memory budget (loading 'qwen')", 'budget'],
    ['budget', 'budget'],
    ['shutdown', 'shutdown'],
    ['Idle', 'idle'],
  ])('maps the reason text %j (no reason_code) to %s', (reason, expected) => {
    expect(evictionReason({ reason })).toBe(expected);
  });

  it('maps anything else to "other", never to the text itself', () => {
    expect(evictionReason({ reason: "evicted for 'llama3' by a peer" })).toBe('other');
    expect(evictionReason({ reason_code: "budget for 'llama3'", reason: 'x' })).toBe('other');
    expect(evictionReason({ reason_code: 42 })).toBe('other');
    expect(evictionReason({})).toBe('other');
  });
});
