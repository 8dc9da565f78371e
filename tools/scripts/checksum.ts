// Writes Rocky's BSD-style CHECKSUM for a directory: node -r @swc-node/register tools/scripts/checksum.ts <dir> [files...]
import { checksumDirectory } from '../../libs/stages/src/checksum-dir';

const [dir, ...files] = process.argv.slice(2);
if (!dir) {
  console.error('usage: checksum.ts <dir> [file...]');
  process.exit(2);
}
checksumDirectory(dir, { files: files.length ? files : undefined }).then(
  (entries) => console.log(`${dir}/CHECKSUM: ${entries.length} files`),
  (e: Error) => (console.error(e.message), process.exit(1)),
);
