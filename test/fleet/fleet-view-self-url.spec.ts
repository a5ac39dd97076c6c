/**
 * The url a node gives for itself (its line in the fleet view, `node_url` of its own entries, GET /api/fleet/node):
 * always an address peers and clients can reach.
 */
import { FleetViewService } from '../../src/fleet/fleet-view.service.js';
import { configFrom } from '../support/config.js';
import { FakeClock } from '../support/fake-clock.js';
import { buildModelCore } from '../support/model-core.js';

function selfUrl(yaml: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string {
  const config = configFrom({ backends: [], ...yaml }, env);
  const core = buildModelCore(config, [], new FakeClock());
  return new FleetViewService(config, core.store, core.models, core.registry).selfUrl;
}

describe("a node's own url", () => {
  it('is fleet.self_url when set (MODELPLANE_SELF_URL)', () => {
    expect(selfUrl({ server: { host: '0.0.0.0' } }, { MODELPLANE_SELF_URL: 'http://10.1.2.3:8080' })).toBe(
      'http://10.1.2.3:8080',
    );
  });

  it('bound to every interface in a pod, is the pod IP (a node name does not resolve on the pod network)', () => {
    const env = { MODELPLANE_POD_IP: '10.1.2.3', MODELPLANE_NODE_NAME: 'gpu-1' };
    expect(selfUrl({ server: { host: '0.0.0.0', port: 8080 } }, env)).toBe('http://10.1.2.3:8080');
    expect(selfUrl({ server: { host: '::', port: 8080 } }, { ...env, MODELPLANE_POD_IP: 'fd00::7' })).toBe(
      'http://[fd00::7]:8080',
    );
  });

  it('bound to one address, is that address', () => {
    expect(selfUrl({ server: { host: '127.0.0.2', port: 9000 } }, { MODELPLANE_POD_IP: '10.1.2.3' })).toBe(
      'http://127.0.0.2:9000',
    );
  });
});
