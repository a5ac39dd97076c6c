/**
 * `npm run models:generate -- <folder>`: writes the tiny generated models (the demo's chat and embedding
 * GGUF files and its LCM image pipeline) into <folder>, e.g. to point a config file at them or to copy
 * them to a machine. Nothing is downloaded. Exit 2 without a folder.
 */
import { resolve } from 'node:path';
import { writeDemoModels } from './demo-models.js';

const folder = process.argv[2];
if (folder === undefined || folder.startsWith('-')) {
  process.stderr.write('usage: npm run models:generate -- <folder>\n');
  process.exit(2);
}
// The files go to <folder>/demo, the layout the embedded demo uses under data_dir.
const paths = writeDemoModels(resolve(folder));
process.stdout.write(`${paths.chat}\n${paths.embed}\n${paths.image}\n`);
