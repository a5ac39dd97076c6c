/**
 * Jest globalSetup of the e2e tier: builds the server once (`npm run build`, as `npm start` and the image use
 * it) before any spec that starts `node dist/src/main.js` runs. Each such spec used to build it in its own
 * beforeAll, and with two jest workers one build could rewrite main.js while another spec's process started
 * from it. tsconfig.build.json is incremental, so an unchanged tree rebuilds in seconds.
 */
const { execFileSync } = require('node:child_process');

module.exports = function buildServer() {
  execFileSync('npm', ['run', '--silent', 'build'], {
    stdio: 'inherit',
    // Jest's own flags (vm modules) are not the compiler's.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
};
