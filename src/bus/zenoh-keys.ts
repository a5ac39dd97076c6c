/** How MQTT-style bus topics and URLs map onto zenoh key expressions and remote-api locators. */

/**
 * MQTT-style topic → zenoh key expression. `local/llm/request` stays `local/llm/request`; leading,
 * trailing and doubled `/` are dropped (zenoh forbids empty chunks); the MQTT wildcards map to
 * zenoh's: `+` → `*` (one chunk), `#` → `**` (any number, last level only). Characters zenoh reserves
 * (`*` `$` `?` `#` inside a chunk) are refused rather than silently changing the meaning.
 */
export function topicToKeyExpr(topic: string): string {
  const levels = topic.split('/').filter((level) => level.length > 0);
  if (levels.length === 0) throw new Error(`bus topic '${topic}' has no key expression chunks`);
  return levels
    .map((level, i) => {
      if (level === '+') return '*';
      if (level === '#') {
        if (i !== levels.length - 1) throw new Error(`bus topic '${topic}': '#' must be the last level`);
        return '**';
      }
      if (/[*$?#+]/.test(level)) throw new Error(`bus topic '${topic}': '${level}' holds a character zenoh reserves`);
      return level;
    })
    .join('/');
}

/**
 * The locator zenoh-ts wants for a remote-api plugin: `ws/host:port` or `ws://host:port` (both accepted
 * by zenoh-ts), also written as `zenoh+ws://host:port` or `zenoh://host:port` in our config.
 */
export function zenohLocator(url: string): string {
  const match = /^(?:zenoh\+)?(wss?):\/\/(.+)$/.exec(url) ?? /^(wss?)\/(.+)$/.exec(url);
  if (match) return `${match[1]}://${match[2]}`;
  const bare = /^zenoh:\/\/(.+)$/.exec(url);
  if (bare) return `ws://${bare[1]}`;
  throw new Error(`bus url '${url}' is not a zenoh remote-api locator (expected ws://host:port)`);
}
