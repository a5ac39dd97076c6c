import { errorText } from '../common/errors.js';

/** The little of a zenoh session the bus uses; the seam that lets tests run without a router. */
export interface ZenohSession {
  put(keyExpr: string, payload: Uint8Array): Promise<void>;
  subscribe(keyExpr: string, handler: (payload: Uint8Array) => void): Promise<void>;
  /** A round trip to the router; rejects (or hangs) when the link is gone. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type ZenohSessionFactory = (locator: string) => Promise<ZenohSession>;

/** zenoh-ts cannot work in this process (not installed, or Node started without the flags it needs). Not retried. */
export class ZenohUnavailableError extends Error {
  override name = 'ZenohUnavailableError';
}

/** The parts of @eclipse-zenoh/zenoh-ts we call, typed here so the build does not need the optional package. */
interface ZenohTsModule {
  Config: new (locator: string, messageResponseTimeoutMs?: number) => unknown;
  Session: {
    open(config: unknown): Promise<{
      put(key: string, payload: Uint8Array): Promise<void>;
      declareSubscriber(
        key: string,
        options: { handler: (sample: { payload(): { toBytes(): Uint8Array } }) => void },
      ): Promise<unknown>;
      info(): Promise<unknown>;
      close(): Promise<void>;
    }>;
  };
}

const ZENOH_TS = '@eclipse-zenoh/zenoh-ts';

/** The real session factory: loads zenoh-ts on first use and explains what is missing when it cannot. */
export async function openZenohTsSession(locator: string): Promise<ZenohSession> {
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    throw new ZenohUnavailableError(
      'zenoh-ts needs a global WebSocket: use Node 24 (built in), or start an older Node with --experimental-websocket',
    );
  }
  let zenoh: ZenohTsModule;
  try {
    // A variable specifier keeps TypeScript from requiring the optional package at build time.
    zenoh = (await import(ZENOH_TS)) as ZenohTsModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      throw new ZenohUnavailableError(`${ZENOH_TS} is not installed (npm install ${ZENOH_TS}@1.10.1)`);
    }
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new ZenohUnavailableError(
        `${ZENOH_TS} imports a .wasm module: start Node with --experimental-wasm-modules (${errorText(error)})`,
      );
    }
    throw new ZenohUnavailableError(`${ZENOH_TS} failed to load: ${errorText(error)}`);
  }
  const session = await zenoh.Session.open(new zenoh.Config(locator));
  return {
    put: (key, payload) => session.put(key, payload),
    subscribe: async (key, handler) => {
      await session.declareSubscriber(key, { handler: (sample) => handler(sample.payload().toBytes()) });
    },
    ping: async () => {
      await session.info();
    },
    close: () => session.close(),
  };
}
